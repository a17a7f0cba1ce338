"""Content-addressed artifact storage on a local directory."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NamedTuple

import anyio
import anyio.to_thread

from .._exceptions import InvalidValueError, StorageError
from .._tempdir import active_temp_dir, use_temp_dir
from ..models import DIGEST_FIELDS, Artifact
from ._areas import Scratch, create_area, remove_area
from ._integrity import CAN_MEASURE_OWN, FileReader, Measured, open_own, verify

__all__ = ["ArtifactStorage"]

_log = logging.getLogger("stageline.storage")
_SHA256 = re.compile("[0-9a-f]{64}")


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# store()'s event-loop way (see ArtifactStorage._store_small_downloads): finished
# downloads of at most _SMALL_FILE bytes, at most _RUN_FILES files or _RUN_BYTES at a time
# (what the loop thread is kept busy with between two fsync calls in a worker thread).
_SMALL_FILE = 64 * 1024
_RUN_FILES = 64
_RUN_BYTES = 1024 * 1024


def _small(artifact: Artifact) -> bool:
    return artifact.size is not None and artifact.size <= _SMALL_FILE


def _resolve_all(directories: list[Path]) -> list[str]:
    return [os.path.realpath(directory) for directory in directories]


def _fsync_all(fds: list[int]) -> None:
    for fd in fds:
        os.fsync(fd)


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _open_folders(folders: set[str], limit: int) -> list[int]:
    """Open (and take from ``folders``) up to ``limit`` folders, to be synced.

    Raises:
        OSError: a folder cannot be opened (those opened are closed).
    """
    fds: list[int] = []
    try:
        while folders and len(fds) < limit:
            fds.append(os.open(folders.pop(), os.O_RDONLY | os.O_DIRECTORY))
    except OSError:
        _close_all(fds)
        raise
    return fds


class _Opened(NamedTuple):
    """A finished download read and checked by the event loop's way, still open."""

    artifact: Artifact
    source: Path
    target: Path
    fd: int
    measured: Measured


def _real_path(path: Path, real_folders: dict[str, str]) -> str:
    """``os.path.realpath(path)`` for a path whose last part is not a symlink.

    A batch's downloads share one folder: its real path is looked up once (in
    ``real_folders``), not once per file, each time a system call per path component.
    """
    folder, name = os.path.split(path)
    if name in ("", ".", ".."):
        return os.path.realpath(path)
    real = real_folders.get(folder)
    if real is None:
        real = real_folders[folder] = os.path.realpath(folder)
    return os.path.join(real, name)


def _is_within(path: str, directories: list[str]) -> bool:
    """Whether ``path`` (resolved) lies in one of the (resolved) ``directories``."""
    return any(
        path.startswith(directory)
        and (
            directory.endswith(os.sep)  # the root: every absolute path is inside
            or path[len(directory) : len(directory) + 1] in ("", os.sep)
        )
        for directory in directories
    )


class ArtifactStorage:
    """Artifact files under ``root``, each at a path derived from its sha256.

    The layout::

        root/artifacts/ab/cdef0123…   the file whose sha256 is "abcdef0123…"
        root/tmp/<area>/               temporary areas of running syncs

    Files reach their final path only by an atomic rename of a complete, fsync'd file on
    the same filesystem whose size and sha256 were checked first, so a reader never sees a
    partial artifact, even after a crash, nor a file at a digest its bytes do not have.
    Two syncs storing the same file at once both succeed (the bytes are identical).
    Blocking file work runs in worker threads, but for small finished downloads, which
    are read, checked and renamed on the event loop thread as a download writes them
    (their fsyncs still run in a worker thread); every method can be awaited from
    asyncio or Trio.

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
        if _SHA256.fullmatch(sha256) is None:
            raise InvalidValueError(f"sha256 must be 64 lower-case hex digits, got {sha256!r}")
        return self.artifacts_dir / sha256[:2] / sha256[2:]

    # -- writing ---------------------------------------------------------------------------

    async def store(self, artifacts: Sequence[Artifact]) -> None:
        """Verify each artifact's file, put it into storage and point ``artifact.file`` at it.

        Each file's size and sha256 are computed from its bytes (one read: in a worker
        thread, or for a finished download of up to 64 KiB on the event loop thread, as
        the download itself wrote it) and must match the artifact's ``sha256`` and, when
        it declares one, its ``size``; a file that does not is refused with
        :class:`ArtifactIntegrityError` before it reaches its place. A file inside this
        storage's temporary areas or the current temporary directory (a finished
        download) is hashed, then moved; any other file (one a plugin already had, or a
        symlink) is copied while hashed, so the caller's file is kept. Files are handled
        in order: those before a refused one are stored.

        When the storage already holds the digest, the file there is checked against the
        new, verified copy: by size, then by hashing it. If it is intact the new copy is
        dropped; if not, the new copy replaces it (one atomic rename, a warning on the
        ``stageline.storage`` logger). An artifact whose ``file`` already is its storage
        path is checked by size only (a stat): there is no other copy to repair it with.

        Args:
            artifacts: artifacts with a sha256 and a ``file``.

        Raises:
            ValueError: an artifact has no sha256 or no file, or its sha256 is malformed.
            ArtifactIntegrityError: a file's bytes differ from the artifact's sha256 or size.
            StorageError: a file is missing, or reading, writing, syncing or renaming failed.
        """
        jobs: list[tuple[Artifact, str, Path, Path]] = []
        for artifact in artifacts:
            if artifact.sha256 is None or artifact.file is None:
                raise InvalidValueError(
                    f"an artifact needs a sha256 and a file to be stored: {artifact!r}"
                )
            target = self.path_for(artifact.sha256)
            jobs.append((artifact, artifact.sha256, artifact.file, target))

        # Temporary files are moved: this storage's areas, and wherever current_temp_dir()
        # points in this context (downloads made outside temporary_area()).
        temporary = [self.temp_root]
        current = active_temp_dir()
        if current is not None:
            temporary.append(current)
        # Strings, not Paths: this runs for every file of a sync, and os.path's functions
        # cost a fraction of pathlib's for the same system calls.
        resolved: list[str] = []
        real_folders: dict[str, str] = {}
        done = 0
        if CAN_MEASURE_OWN and jobs and _small(jobs[0][0]):
            resolved = _resolve_all(temporary)
            done = await self._store_small_downloads(jobs, resolved, real_folders)
        if done == len(jobs):
            return
        rest = jobs[done:]

        def work() -> None:
            put = _Put(FileReader(), Scratch(self.temp_root))
            if not resolved:
                resolved.extend(_resolve_all(temporary))
            try:
                for artifact, sha256, source, target in rest:
                    try:
                        # A symlink is copied through: renamed, the link itself would
                        # sit at the digest, its bytes free to change behind it.
                        # (Where the platform can, the move's own open refuses a
                        # symlink, and the file is copied then: no lstat per file.)
                        not_a_link = CAN_MEASURE_OWN or not os.path.islink(source)
                        is_temporary = not_a_link and _is_within(
                            _real_path(source, real_folders), resolved
                        )
                        put.file(source, target, sha256, artifact.size, move=is_temporary)
                    except OSError as exc:
                        raise StorageError(
                            f"could not store {source} as {target}: {exc}; check that the "
                            f"file exists and that {self.root} is writable and not full"
                        ) from exc
                    artifact.file = target
                try:
                    put.sync_folders()
                except OSError as exc:
                    raise self._sync_error(exc) from exc
            finally:
                put.scratch.remove()

        await anyio.to_thread.run_sync(work)

    async def _store_small_downloads(
        self,
        jobs: Sequence[tuple[Artifact, str, Path, Path]],
        resolved: list[str],
        real_folders: dict[str, str],
    ) -> int:
        """``store()``'s way for small finished downloads; returns how many jobs it did.

        A worker thread's every system call hands the GIL to the event loop thread, busy
        with the downloads, and then waits to get it back: storing a small file that way
        cost ~15 context switches. So the files of up to ``_SMALL_FILE`` bytes that a
        download wrote are read, checked and renamed here, on the event loop thread,
        ``_RUN_FILES`` (at most ``_RUN_BYTES``) at a time, as a download writes them;
        only the system calls that may block for long, the fsyncs, run in a worker
        thread, one call per run. The order is the thread's: each file is synced before
        its rename, and the folders before the call returns.

        It stops at the first job that needs more (a large file, one that is not a
        download, a symlink, bytes that do not match, a rename across filesystems, or
        any failure): that job and those after it take the worker-thread way, which
        deals with each of them (and raises what it must).
        """
        put = _Put(FileReader(), Scratch(self.temp_root))
        done = 0
        while done < len(jobs):
            run = put.open_run(jobs[done : done + _RUN_FILES], resolved, real_folders)
            if not run:
                break
            try:
                await anyio.to_thread.run_sync(_fsync_all, [entry.fd for entry in run])
            except OSError:
                break  # the worker thread's way tries again, and says what failed
            finally:
                _close_all([entry.fd for entry in run])
            moved = put.move_run(run)
            done += moved
            if moved < len(run):
                break
        while put._unsynced:
            try:
                fds = _open_folders(put._unsynced, _RUN_FILES)
            except OSError as exc:
                raise self._sync_error(exc) from exc
            try:
                await anyio.to_thread.run_sync(_fsync_all, fds)
            except OSError as exc:
                raise self._sync_error(exc) from exc
            finally:
                _close_all(fds)
        return done

    def _sync_error(self, exc: OSError) -> StorageError:
        """The error of a folder that could not be synced (either of store()'s ways)."""
        return StorageError(
            f"could not sync the folders of the files stored in {self.root}: {exc}; check "
            "that it is writable and not full"
        )

    async def store_bytes(self, data: bytes) -> Artifact:
        """Store ``data`` and return an (unsaved) artifact with its size, digests and file.

        Handy for tests and for plugins that generate metadata files. A file already
        stored under the same sha256 is checked as in :meth:`store` and replaced when its
        bytes differ.

        Raises:
            StorageError: writing failed.
        """

        def work() -> Artifact:
            digests = {name: hashlib.new(name, data).hexdigest() for name in DIGEST_FIELDS}
            artifact = Artifact(size=len(data))
            for name, value in digests.items():
                setattr(artifact, name, value)
            target = self.path_for(digests["sha256"])
            put = _Put(FileReader(), Scratch(self.temp_root))
            try:
                put.data(data, target, Measured(len(data), digests["sha256"]))
            except OSError as exc:
                raise StorageError(f"could not write {target}: {exc}") from exc
            finally:
                put.scratch.remove()
            artifact.file = target
            return artifact

        return await anyio.to_thread.run_sync(work)

    # -- reading ---------------------------------------------------------------------------

    async def exists(self, sha256: str) -> bool:
        """True when the storage holds the file with this sha256."""
        return await anyio.Path(self.path_for(sha256)).is_file()

    def _stored_path(self, artifact: Artifact) -> Path:
        if artifact.sha256 is None:
            raise InvalidValueError(f"an artifact needs a sha256 to be read: {artifact!r}")
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
        process (their lock is free), and the remains of a removal a kill interrupted,
        are removed when the next area is created.

        Yields:
            The directory.

        Raises:
            StorageError: the directory cannot be created.
        """
        path, fd = await anyio.to_thread.run_sync(create_area, self.temp_root)
        try:
            with use_temp_dir(path):
                yield path
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(remove_area, path, fd)


class _Put:
    """Puts verified files into storage (blocking; one per ``store()`` call, so that its
    files share one read buffer and one scratch area)."""

    def __init__(self, reader: FileReader, scratch: Scratch) -> None:
        self.reader = reader
        self.scratch = scratch
        # Folders known to exist, and folders whose new entries are not synced yet: a
        # batch's files share a few hundred folders, each made and synced once per call.
        self._made: set[str] = set()
        self._unsynced: set[str] = set()

    def _make_folder_of(self, target: Path) -> None:
        folder = os.path.dirname(target)
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)

    def sync_folders(self) -> None:
        """Sync the folders that got new entries, so that the renames survive a crash.

        Called once the call's files are in place, before it returns: nothing records a
        file in the database before its rename is durable.

        Raises:
            OSError: a folder could not be synced.
        """
        while self._unsynced:
            _fsync_path(Path(self._unsynced.pop()), directory=True)

    def file(
        self, source: Path, target: Path, sha256: str, size: int | None, *, move: bool
    ) -> None:
        """Verify ``source`` and make ``target`` hold its bytes (moved or copied).

        Raises:
            ArtifactIntegrityError: ``source`` is not what ``sha256``/``size`` say.
            OSError: a file operation failed.
        """
        if source == target:
            self._check_in_place(target, sha256, size)
            return
        if move:
            # Synced while it is open for the hash: a duplicate that is then dropped was
            # synced for nothing, which costs less than opening every file twice.
            try:
                measured = self.reader.measure_own(source)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                # A symlink (refused by the open): copied through, as store() explains.
                self.file(source, target, sha256, size, move=False)
                return
            if not measured.matches(sha256=sha256, size=size):
                # measure_own takes a short read as the end, which holds for a regular
                # file on a local filesystem, not on every one: the long way decides.
                measured = self.reader.measure(source, sync=True)
            verify(source, measured, sha256=sha256, size=size)
            if self._holds_intact(target, measured):
                source.unlink()
                return
            self._make_folder_of(target)
            try:
                os.replace(source, target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                self._copy_into_place(source, target, sha256, size)
                source.unlink()
        else:
            if target.exists():
                # A copy is only needed when the stored file is damaged: hash the
                # caller's file without copying it, then the stored one.
                measured = self.reader.measure(source)
                verify(source, measured, sha256=sha256, size=size)
                if self._holds_intact(target, measured):
                    return
            self._make_folder_of(target)
            self._copy_into_place(source, target, sha256, size)
        self._unsynced.add(os.path.dirname(target))

    def open_run(
        self,
        jobs: Sequence[tuple[Artifact, str, Path, Path]],
        resolved: list[str],
        real_folders: dict[str, str],
    ) -> list[_Opened]:
        """Open, read and check the first of ``jobs`` that are small finished downloads.

        Stops (before it) at the first job that is not one, or that fails in any way: a
        symlink, an open or read error, bytes that do not match. The files are left open
        for their fsync.
        """
        run: list[_Opened] = []
        run_bytes = 0
        try:
            for artifact, sha256, source, target in jobs:
                size = artifact.size
                if (
                    size is None
                    or not _small(artifact)
                    or (run and run_bytes + size > _RUN_BYTES)
                    or source == target
                    or not _is_within(_real_path(source, real_folders), resolved)
                ):
                    break
                try:
                    fd = open_own(source)
                except OSError:
                    break
                try:
                    measured = self.reader.measure_open(fd)
                except OSError:
                    os.close(fd)
                    break
                if not measured.matches(sha256=sha256, size=size):
                    os.close(fd)
                    break
                run.append(_Opened(artifact, source, target, fd, measured))
                run_bytes += size
        except BaseException:
            _close_all([entry.fd for entry in run])
            raise
        return run

    def move_run(self, run: list[_Opened]) -> int:
        """Move the synced files of ``run`` into place, in order; how many were.

        Stops at the first that fails (a rename across filesystems among them): the
        caller leaves it to the worker thread's way, which copies or reports it.
        """
        moved = 0
        for artifact, source, target, _fd, measured in run:
            try:
                if self._holds_intact(target, measured):
                    os.unlink(source)
                else:
                    self._make_folder_of(target)
                    os.replace(source, target)
                    self._unsynced.add(os.path.dirname(target))
            except OSError:
                break
            artifact.file = target
            moved += 1
        return moved

    def data(self, data: bytes, target: Path, measured: Measured) -> None:
        """Make ``target`` hold ``data``, whose size and sha256 are ``measured``.

        Raises:
            OSError: a file operation failed.
        """
        if self._holds_intact(target, measured):
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written in a temporary area, as in _copy_into_place.
        partial = self.scratch.path() / f"{target.name}.{uuid.uuid4().hex}.partial"
        try:
            with partial.open("xb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            self._rename_into_place(partial, target, measured.sha256, measured.size)
        finally:
            partial.unlink(missing_ok=True)
        _fsync_path(target.parent, directory=True)

    def _check_in_place(self, target: Path, sha256: str, size: int | None) -> None:
        # No other copy to repair it with, and hashing every stored file that is stored
        # again would cost a read each: the size is checked, the bytes only when it is off.
        if size is not None and target.stat().st_size != size:
            verify(target, self.reader.measure(target), sha256=sha256, size=size)

    def _holds_intact(self, target: Path, new: Measured) -> bool:
        """Whether ``target`` exists with the verified ``new`` bytes' size and sha256.

        A damaged file is logged and left to be replaced by the caller's atomic rename.
        """
        try:
            existing_size = os.stat(target).st_size
        except FileNotFoundError:
            return False
        if existing_size == new.size:
            existing = self.reader.measure(target)
            if existing.sha256 == new.sha256:
                return True
            found = f"sha256 {existing.sha256}"
        else:
            found = f"{existing_size} bytes, not {new.size}"
        _log.warning(
            "artifact file %s was damaged (%s); replacing it with a verified copy",
            target,
            found,
        )
        return False

    def _copy_into_place(self, source: Path, target: Path, sha256: str, size: int | None) -> None:
        # Copy into a temporary area first, so that the final step is still an atomic
        # rename and a process killed mid-copy leaves its partial file where the next
        # temporary_area() sweeps it (next to the target, nothing would ever remove it).
        # The copy is hashed as it is written and checked before it is renamed.
        partial = self.scratch.path() / f"{target.name}.{uuid.uuid4().hex}.partial"
        try:
            verify(source, self.reader.copy(source, partial), sha256=sha256, size=size)
            self._rename_into_place(partial, target, sha256, size)
        finally:
            partial.unlink(missing_ok=True)

    def _rename_into_place(
        self, partial: Path, target: Path, sha256: str, size: int | None
    ) -> None:
        try:
            os.replace(partial, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # tmp/ is on another filesystem than artifacts/: copy next to the target,
            # checked again, since these are new bytes on another disk.
            next_to = target.parent / f".{target.name}.{uuid.uuid4().hex}.partial"
            try:
                verify(partial, self.reader.copy(partial, next_to), sha256=sha256, size=size)
                os.replace(next_to, target)
            finally:
                next_to.unlink(missing_ok=True)
