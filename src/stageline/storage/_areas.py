"""Temporary areas under ``root/tmp``: made per sync, removed at its end, swept after a kill.

An area is a directory ``<pid>-<uuid>`` holding a lock file (``.in-use``) that its process
keeps ``flock``-ed while the area is in use; the kernel releases the lock when the process
dies, which is how a later sweep tells an abandoned area from a live one.

Everything here is blocking; callers run it in a worker thread.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from contextlib import suppress
from pathlib import Path

from .._exceptions import StorageError

__all__ = ["Scratch", "create_area", "remove_area", "sweep_abandoned"]

_LOCK_NAME = ".in-use"
# Seconds after which an area without a lock file counts as abandoned.
_LOCKLESS_GRACE = 3600.0


def create_area(temp_root: Path) -> tuple[Path, int]:
    """Sweep abandoned areas, then make a new locked area; returns it and the lock's fd.

    Raises:
        StorageError: the area cannot be created.
    """
    try:
        temp_root.mkdir(parents=True, exist_ok=True)
        sweep_abandoned(temp_root)
        path = temp_root / f"{os.getpid()}-{uuid.uuid4().hex}"
        path.mkdir()
        # Locked under another name and renamed into place, so that a concurrent sweep
        # never finds the lock file of a new area still unlocked and removes the area.
        creating = path / f"{_LOCK_NAME}.new"
        fd = os.open(creating, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(creating, path / _LOCK_NAME)
        except OSError:
            os.close(fd)
            raise
    except OSError as exc:
        raise StorageError(f"could not create a temporary area under {temp_root}: {exc}") from exc
    return path, fd


def remove_area(path: Path, fd: int) -> None:
    """Remove the area ``path`` whose lock ``fd`` this process holds, and release the lock."""
    try:
        shutil.rmtree(path, ignore_errors=True)
    finally:
        os.close(fd)


def sweep_abandoned(temp_root: Path) -> None:
    """Remove areas whose process is gone."""
    for entry in temp_root.iterdir():
        if not entry.is_dir():
            continue
        try:
            fd = os.open(entry / _LOCK_NAME, os.O_RDWR)
        except FileNotFoundError:
            # Being created by another process this instant (the lock file follows the
            # mkdir), or left by one killed in between: only an old one is removed.
            with suppress(OSError):
                if time.time() - entry.stat().st_mtime > _LOCKLESS_GRACE:
                    shutil.rmtree(entry, ignore_errors=True)
            continue
        except OSError:
            # Not ours to judge (another user's area, a broken entry): leave it, and
            # do not let it stop this sync from making its own area.
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        finally:
            os.close(fd)
        shutil.rmtree(entry, ignore_errors=True)


class Scratch:
    """A temporary area for partial copies, created on first use (blocking calls)."""

    def __init__(self, temp_root: Path) -> None:
        self._temp_root = temp_root
        self._area: tuple[Path, int] | None = None

    def path(self) -> Path:
        """The area's directory, created (after a sweep) on the first call.

        Raises:
            StorageError: the area cannot be created.
        """
        if self._area is None:
            self._area = create_area(self._temp_root)
        return self._area[0]

    def remove(self) -> None:
        """Remove the area, if it was created."""
        area, self._area = self._area, None
        if area is not None:
            remove_area(*area)
