"""Temporary areas under ``root/tmp``: made per sync, removed at its end, swept after a kill.

An area is a directory ``<pid>-<uuid>`` holding a lock file (``.in-use``) that its process
keeps ``flock``-ed while the area is in use; the kernel releases the lock when the process
dies, which is how a later sweep tells an abandoned area from a live one.

Removal must survive a kill at any point of its own work, or a half-deleted area (its
lock file already gone, thousands of files still there) would look like an area being
created this instant, which a sweep leaves alone for ``_LOCKLESS_GRACE``. So an area is
first renamed, in one atomic step, to ``.deleting-<uuid>``, and only then emptied; a sweep
removes every ``.deleting-*`` directory unconditionally. Whenever the process dies, what
it leaves is either a whole area with its lock (swept once the lock is free) or a
``.deleting-*`` directory (swept at once).

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
# Names of areas being deleted: whatever is left under such a name is removed by any sweep.
_DELETING_PREFIX = ".deleting-"
# Seconds after which an area without a lock file counts as abandoned. Only a process
# killed between the area's mkdir and its lock's rename leaves one (an empty area).
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
        doomed = _mark_for_deletion(path)
    finally:
        os.close(fd)
    if doomed is not None:
        shutil.rmtree(doomed, ignore_errors=True)


def sweep_abandoned(temp_root: Path) -> None:
    """Remove areas whose process is gone, and the remains of interrupted removals."""
    for entry in temp_root.iterdir():
        if entry.name.startswith(_DELETING_PREFIX):
            shutil.rmtree(entry, ignore_errors=True)
            continue
        if not entry.is_dir():
            continue
        try:
            fd = os.open(entry / _LOCK_NAME, os.O_RDWR)
        except FileNotFoundError:
            # Being created by another process this instant (the lock file follows the
            # mkdir), or left by one killed in between: only an old one is removed.
            with suppress(OSError):
                if time.time() - entry.stat().st_mtime > _LOCKLESS_GRACE:
                    _discard(entry)
            continue
        except OSError:
            # Not ours to judge (another user's area, a broken entry): leave it, and
            # do not let it stop this sync from making its own area.
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            # Renamed while the lock is held, so that two sweeps never both claim it.
            doomed = _mark_for_deletion(entry)
        finally:
            os.close(fd)
        if doomed is not None:
            shutil.rmtree(doomed, ignore_errors=True)


def _discard(area: Path) -> None:
    doomed = _mark_for_deletion(area)
    if doomed is not None:
        shutil.rmtree(doomed, ignore_errors=True)


def _mark_for_deletion(area: Path) -> Path | None:
    """Rename ``area`` to a ``.deleting-*`` name in one step; None when it is already gone.

    When the rename fails otherwise (a temporary root that refuses renames), the area is
    returned as it is and removed in place: without the crash-proof order, but removed.
    """
    doomed = area.with_name(f"{_DELETING_PREFIX}{uuid.uuid4().hex}")
    try:
        os.rename(area, doomed)
    except FileNotFoundError:
        return None
    except OSError:
        return area
    return doomed


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
