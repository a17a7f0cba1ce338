"""Content-addressed artifact storage and the temporary area for downloads."""

from .._tempdir import current_temp_dir, use_temp_dir
from ._storage import ArtifactStorage

__all__ = ["ArtifactStorage", "current_temp_dir", "use_temp_dir"]
