"""Content-addressed artifact storage and the temporary area for downloads."""

from ._temp import current_temp_dir, use_temp_dir

__all__ = ["current_temp_dir", "use_temp_dir"]
