"""The temporary area where downloads are written before they are stored.

It sits at the bottom of the layers, beside the engine, because two parts that may not
import each other share it: the download layer writes there and the storage layer sets
it (``ArtifactStorage.temporary_area()``) and moves files out of it. Like the running
pipeline, it is ambient: a context variable the tasks of a sync inherit.

Downloads write into :func:`current_temp_dir`. A sync sets it (with
:func:`use_temp_dir`) to a directory on the same filesystem as the artifact storage, so
that a finished download can be renamed into place, and empties it when the sync ends.
Outside a sync it falls back to a ``stageline`` folder in the system temporary directory.
"""

from __future__ import annotations

import contextvars
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["active_temp_dir", "current_temp_dir", "temp_dir_path", "use_temp_dir"]

_current: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "stageline_temp_dir", default=None
)


def current_temp_dir() -> Path:
    """The directory new temporary files go to in this context (created if missing)."""
    path = temp_dir_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


def active_temp_dir() -> Path | None:
    """The directory :func:`use_temp_dir` set in this context, None outside one."""
    return _current.get()


def temp_dir_path() -> Path:
    """:func:`current_temp_dir` without creating it: for callers that create files there
    and make the directory only when that fails (a ``mkdir`` per download adds up)."""
    path = _current.get()
    return Path(tempfile.gettempdir()) / "stageline" if path is None else path


@contextmanager
def use_temp_dir(path: str | Path) -> Iterator[Path]:
    """Make ``path`` the temporary area for the code (and the tasks it starts) inside.

    Tasks started inside the block inherit it, on asyncio and Trio alike, because both
    copy the context when a task is spawned.
    """
    p = Path(path)
    token = _current.set(p)
    try:
        yield p
    finally:
        _current.reset(token)
