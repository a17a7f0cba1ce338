"""Content-addressed artifact storage on a local directory."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import anyio
import anyio.to_thread

from .._exceptions import StorageError
from ..models import DIGEST_FIELDS, Artifact
from ._temp import _current as _current_temp
from ._temp import use_temp_dir

__all__ = ["ArtifactStorage"]

_LOCK_NAME = ".in-use"
# Seconds after which an area without a lock file counts as abandoned.
_LOCKLESS_GRACE = 3600.0


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_durably(source: Path, destination: Path) -> None:
    """Copy ``source`` to a new ``destination`` and fsync it, ready to be renamed."""
    with source.open("rb") as src, destination.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
        dst.flush()
        os.fsync(dst.fileno())


def _is_within(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True


class ArtifactStorage:
    """Artifact files under ``root``, each at a path derived from its sha256.

    The layout::

        root/artifacts/ab/cdef0123…   the file whose sha256 is "abcdef0123…"
        root/tmp/<area>/               temporary areas of running syncs

    Files reach their final path only by an atomic rename of a complete, fsync'd file on
    the same filesystem, so a reader never sees a partial artifact, even after a crash.
    Two syncs storing the same file at once both succeed (the bytes are identical).
    Blocking file work runs in worker threads; every method can be awaited from asyncio
    or Trio.

    Args:
        root: the storage directory (created when first needed).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.artifacts_dir = self.root / "artifacts"
        self.temp_root = self.root / "tmp"

    def __repr__(self) -> str:
        return f"ArtifactStorage({str(self.root)!r})"

    def path_for(self, sha256: str) -> Path:
        """Where the file with this sha256 is (or would be) stored.

        Raises:
            ValueError: ``sha256`` is not 64 lower-case hex digits.
        """
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"sha256 must be 64 lower-case hex digits, got {sha256!r}")
        return self.artifacts_dir / sha256[:2] / sha256[2:]

    # -- writing ---------------------------------------------------------------------------

    async def store(self, artifacts: Sequence[Artifact]) -> None:
        """Put each artifact's file into storage and point ``artifact.file`` at it.

        A file inside this storage's temporary areas or the current temporary directory
        (a finished download) is moved; any other file (one a plugin already had) is
        copied, so the caller's file is kept. A
        file already in place is left alone; when the storage already holds the digest,
        the new copy is dropped. Digests are not recomputed: the downloader checked them.

        Args:
            artifacts: artifacts with a sha256 and a ``file``.

        Raises:
            ValueError: an artifact has no sha256 or no file.
            StorageError: a file is missing, or writing, syncing or renaming failed.
        """
        jobs: list[tuple[Artifact, Path, Path]] = []
        for artifact in artifacts:
            if artifact.sha256 is None or artifact.file is None:
                raise ValueError(
                    f"an artifact needs a sha256 and a file to be stored: {artifact!r}"
                )
            jobs.append((artifact, Path(artifact.file), self.path_for(artifact.sha256)))

        # Temporary files are moved: this storage's areas, and wherever current_temp_dir()
        # points in this context (downloads made outside temporary_area()).
        temporary = [self.temp_root]
        current = _current_temp.get()
        if current is not None:
            temporary.append(current)

        def work() -> None:
            scratch = _Scratch(self)
            try:
                for artifact, source, target in jobs:
                    self._put(source, target, temporary, scratch)
                    artifact.file = target
            finally:
                scratch.remove()

        await anyio.to_thread.run_sync(work)

    def _put(self, source: Path, target: Path, temporary: list[Path], scratch: _Scratch) -> None:
        if source == target:
            return
        is_temporary = any(_is_within(source, directory) for directory in temporary)
        try:
            if target.exists():
                if is_temporary:
                    source.unlink(missing_ok=True)
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            if is_temporary:
                _fsync_path(source)
                try:
                    os.replace(source, target)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    self._copy_into_place(source, target, scratch)
                    source.unlink()
            else:
                self._copy_into_place(source, target, scratch)
            _fsync_path(target.parent, directory=True)
        except OSError as exc:
            raise StorageError(
                f"could not store {source} as {target}: {exc}; check that the file exists "
                f"and that {self.root} is writable and not full"
            ) from exc

    def _copy_into_place(self, source: Path, target: Path, scratch: _Scratch) -> None:
        # Copy into a temporary area first, so that the final step is still an atomic
        # rename and a process killed mid-copy leaves its partial file where the next
        # temporary_area() sweeps it (next to the target, nothing would ever remove it).
        partial = scratch.path() / f"{target.name}.{uuid.uuid4().hex}.partial"
        try:
            _copy_durably(source, partial)
            self._rename_into_place(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def _rename_into_place(self, partial: Path, target: Path) -> None:
        try:
            os.replace(partial, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # tmp/ is on another filesystem than artifacts/: copy next to the target.
            self._copy_next_to(partial, target)

    def _copy_next_to(self, source: Path, target: Path) -> None:
        partial = target.parent / f".{target.name}.{uuid.uuid4().hex}.partial"
        try:
            _copy_durably(source, partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    async def store_bytes(self, data: bytes) -> Artifact:
        """Store ``data`` and return an (unsaved) artifact with its size, digests and file.

        Handy for tests and for plugins that generate metadata files.

        Raises:
            StorageError: writing failed.
        """

        def work() -> Artifact:
            digests = {name: hashlib.new(name, data).hexdigest() for name in DIGEST_FIELDS}
            artifact = Artifact(size=len(data))
            for name, value in digests.items():
                setattr(artifact, name, value)
            target = self.path_for(digests["sha256"])
            scratch = _Scratch(self)
            try:
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    # Written in a temporary area, as in _copy_into_place.
                    partial = scratch.path() / f"{target.name}.{uuid.uuid4().hex}.partial"
                    try:
                        with partial.open("wb") as out:
                            out.write(data)
                            out.flush()
                            os.fsync(out.fileno())
                        self._rename_into_place(partial, target)
                    finally:
                        partial.unlink(missing_ok=True)
                    _fsync_path(target.parent, directory=True)
            except OSError as exc:
                raise StorageError(f"could not write {target}: {exc}") from exc
            finally:
                scratch.remove()
            artifact.file = target
            return artifact

        return await anyio.to_thread.run_sync(work)

    # -- reading ---------------------------------------------------------------------------

    async def exists(self, sha256: str) -> bool:
        """True when the storage holds the file with this sha256."""
        return await anyio.Path(self.path_for(sha256)).is_file()

    def _stored_path(self, artifact: Artifact) -> Path:
        if artifact.sha256 is None:
            raise ValueError(f"an artifact needs a sha256 to be read: {artifact!r}")
        return self.path_for(artifact.sha256)

    async def open(self, artifact: Artifact) -> anyio.AsyncFile[bytes]:
        """Open a stored artifact's file for reading (close it, e.g. with ``async with``).

        Raises:
            ValueError: the artifact has no sha256.
            StorageError: the storage does not hold the file.
        """
        path = self._stored_path(artifact)
        try:
            return await anyio.open_file(path, "rb")
        except OSError as exc:
            raise StorageError(
                f"cannot open artifact {artifact.sha256} at {path}: {exc}; the file is not "
                "in storage (it was deferred, or removed outside stageline)"
            ) from exc

    async def read_bytes(self, artifact: Artifact) -> bytes:
        """A stored artifact's whole content (for small files; use :meth:`open` otherwise).

        Raises:
            ValueError: the artifact has no sha256.
            StorageError: the storage does not hold the file.
        """
        async with await self.open(artifact) as f:
            try:
                return await f.read()
            except OSError as exc:
                raise StorageError(
                    f"cannot read artifact {artifact.sha256} at {f.name}: {exc}"
                ) from exc

    # -- the temporary area ------------------------------------------------------------------

    @asynccontextmanager
    async def temporary_area(self) -> AsyncIterator[Path]:
        """A fresh temporary directory for one sync, emptied and removed when it ends.

        Inside the block :func:`~stageline.storage.current_temp_dir` returns it (in the
        tasks the block starts too), so downloads land on the storage's filesystem and
        :meth:`store` can rename them into place. The directory is removed when the block
        ends, normally, by an exception or by cancellation. Areas left by a killed
        process (their lock is free) are removed when the next area is created.

        Yields:
            The directory.

        Raises:
            StorageError: the directory cannot be created.
        """
        path, fd = await anyio.to_thread.run_sync(self._create_area)
        try:
            with use_temp_dir(path):
                yield path
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._remove_area, path, fd)

    def _create_area(self) -> tuple[Path, int]:
        try:
            self.temp_root.mkdir(parents=True, exist_ok=True)
            self._sweep_abandoned()
            path = self.temp_root / f"{os.getpid()}-{uuid.uuid4().hex}"
            path.mkdir()
            # Held while the area is in use: the kernel releases it when the process dies,
            # which is how a later sweep tells an abandoned area from a live one. Locked
            # under another name and renamed into place, so that a concurrent sweep never
            # finds the lock file of a new area still unlocked and removes the area.
            creating = path / f"{_LOCK_NAME}.new"
            fd = os.open(creating, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.rename(creating, path / _LOCK_NAME)
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:
            raise StorageError(
                f"could not create a temporary area under {self.temp_root}: {exc}"
            ) from exc
        return path, fd

    def _sweep_abandoned(self) -> None:
        for entry in self.temp_root.iterdir():
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

    @staticmethod
    def _remove_area(path: Path, fd: int) -> None:
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)


class _Scratch:
    """A temporary area for partial copies, created on first use (blocking calls)."""

    def __init__(self, storage: ArtifactStorage) -> None:
        self._storage = storage
        self._area: tuple[Path, int] | None = None

    def path(self) -> Path:
        if self._area is None:
            self._area = self._storage._create_area()
        return self._area[0]

    def remove(self) -> None:
        area, self._area = self._area, None
        if area is not None:
            self._storage._remove_area(*area)
