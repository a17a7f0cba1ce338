"""Content-addressed artifact storage and the temporary area for downloads."""

from ._storage import ArtifactStorage
from ._temp import current_temp_dir, use_temp_dir

__all__ = ["ArtifactStorage", "current_temp_dir", "use_temp_dir"]
