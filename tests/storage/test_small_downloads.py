"""store()'s event-loop way for small finished downloads, and where it hands over.

Small files a download wrote (a declared size of at most 64 KiB, inside a temporary area)
are read, checked and renamed on the event loop thread, in runs; only their fsyncs run in
a worker thread. The first file that needs more (a large one, a symlink, bytes that do not
match, a failed rename or fsync) and every file after it go the worker thread's way.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest

from stageline import ArtifactIntegrityError, StorageError
from stageline.models import Artifact
from stageline.storage import ArtifactStorage, _integrity, _storage

pytestmark = pytest.mark.anyio


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def body(number: int, size: int = 100) -> bytes:
    return (b"%08d" % number * (size // 8 + 1))[:size]


def downloads(area: Path, bodies: Sequence[bytes], *, sized: bool = True) -> list[Artifact]:
    """Write each body to the area as a download would; their artifacts, in order."""
    artifacts = []
    for number, data in enumerate(bodies):
        path = area / f"download-{number}"
        path.write_bytes(data)
        size = len(data) if sized else None
        artifacts.append(Artifact(sha256=digest(data), size=size, file=path))
    return artifacts


@pytest.fixture
def worker_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files the worker thread's way read (measure_own), in order."""
    reads: list[Path] = []
    real = _integrity.FileReader.measure_own

    def recording(self: _integrity.FileReader, path: Path) -> _integrity.Measured:
        reads.append(path)
        return real(self, path)

    monkeypatch.setattr(_integrity.FileReader, "measure_own", recording)
    return reads


def assert_stored(
    storage: ArtifactStorage, artifacts: Sequence[Artifact], bodies: Sequence[bytes]
) -> None:
    for artifact, data in zip(artifacts, bodies, strict=True):
        assert artifact.file == storage.path_for(digest(data))
        assert artifact.file.read_bytes() == data


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd")
async def test_small_downloads_are_synced_then_renamed_on_the_loop_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker_reads: list[Path]
) -> None:
    """150 files (three runs): none is read by the worker's way; each is synced while it
    is still a download and before any rename of its run, each target folder once all
    files are in place; the downloads are gone."""
    storage = ArtifactStorage(tmp_path)
    bodies = [body(n) for n in range(150)]
    targets = [storage.path_for(digest(data)) for data in bodies]
    synced: list[tuple[Path, bool]] = []  # (what, every target in place by then)
    real_fsync = os.fsync

    def recording(fd: int) -> None:
        synced.append((Path(os.readlink(f"/proc/self/fd/{fd}")), all(map(Path.exists, targets))))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    async with storage.temporary_area() as area:
        artifacts = downloads(area, bodies)
        await storage.store(artifacts)
        assert list(area.iterdir()) == [area / ".in-use"]
    assert worker_reads == []
    assert_stored(storage, artifacts, bodies)
    files = [path for path, _ in synced if path.parent == area]
    assert files == [area / f"download-{n}" for n in range(150)]
    folders = [(path, ready) for path, ready in synced if path.parent == storage.artifacts_dir]
    assert sorted(path for path, _ in folders) == sorted({t.parent for t in targets})
    assert all(ready for _, ready in folders)


async def test_a_run_keeps_to_its_file_and_byte_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker_reads: list[Path]
) -> None:
    """What the loop thread reads between two fsync calls: at most 64 files, 1 MiB."""
    runs: list[tuple[int, int]] = []  # (files, bytes) per fsync call for files
    real_fsync_all = _storage._fsync_all

    def recording(fds: list[int]) -> None:
        sizes = [os.fstat(fd).st_size for fd in fds]
        if not os.path.isdir(f"/proc/self/fd/{fds[0]}"):
            runs.append((len(fds), sum(sizes)))
        real_fsync_all(fds)

    monkeypatch.setattr(_storage, "_fsync_all", recording)
    storage = ArtifactStorage(tmp_path)
    bodies = [body(n, 60_000) for n in range(40)] + [body(n, 10) for n in range(40, 200)]
    async with storage.temporary_area() as area:
        artifacts = downloads(area, bodies)
        await storage.store(artifacts)
    assert worker_reads == []
    assert_stored(storage, artifacts, bodies)
    assert sum(files for files, _ in runs) == len(bodies)
    assert all(files <= 64 and size <= 1024 * 1024 for files, size in runs)
    assert runs[0] == (17, 17 * 60_000)


async def test_a_large_file_and_the_files_after_it_take_the_worker_way(
    tmp_path: Path, worker_reads: list[Path]
) -> None:
    storage = ArtifactStorage(tmp_path)
    bodies = [body(0), body(1), body(2, 64 * 1024 + 1), body(3)]
    async with storage.temporary_area() as area:
        artifacts = downloads(area, bodies)
        await storage.store(artifacts)
    assert worker_reads == [area / "download-2", area / "download-3"]
    assert_stored(storage, artifacts, bodies)


async def test_files_of_unknown_size_take_the_worker_way(
    tmp_path: Path, worker_reads: list[Path]
) -> None:
    storage = ArtifactStorage(tmp_path)
    bodies = [body(0), body(1)]
    async with storage.temporary_area() as area:
        artifacts = downloads(area, bodies, sized=False)
        await storage.store(artifacts)
    assert worker_reads == [area / "download-0", area / "download-1"]
    assert_stored(storage, artifacts, bodies)


async def test_a_mismatch_stores_the_files_before_it_and_refuses_it(
    tmp_path: Path,
) -> None:
    """Files are handled in order: those before the bad one are stored, it is refused (by
    the worker's way, which reads it again the long way first), those after are not."""
    storage = ArtifactStorage(tmp_path)
    bodies = [body(0), body(1), body(2), body(3)]
    async with storage.temporary_area() as area:
        artifacts = downloads(area, bodies)
        artifacts[2].sha256 = digest(b"something else")
        with pytest.raises(ArtifactIntegrityError, match="download-2"):
            await storage.store(artifacts)
        assert_stored(storage, artifacts[:2], bodies[:2])
        assert [a.file for a in artifacts[2:]] == [area / "download-2", area / "download-3"]
        assert (area / "download-2").exists()
        assert (area / "download-3").exists()
    assert not storage.path_for(digest(bodies[3])).exists()


async def test_the_same_file_twice_in_one_call_is_stored_once(tmp_path: Path) -> None:
    storage = ArtifactStorage(tmp_path)
    bodies = [body(0), body(0), body(1)]
    async with storage.temporary_area() as area:
        artifacts = downloads(area, bodies)
        await storage.store(artifacts)
        assert list(area.iterdir()) == [area / ".in-use"]
    assert_stored(storage, artifacts, bodies)


async def test_a_symlink_among_the_downloads_is_copied_through(
    tmp_path: Path, worker_reads: list[Path]
) -> None:
    """A link is not renamed into storage (its target could change behind it)."""
    storage = ArtifactStorage(tmp_path)
    outside = tmp_path / "outside"
    outside.write_bytes(body(1))
    async with storage.temporary_area() as area:
        artifacts = downloads(area, [body(0)])
        (area / "link").symlink_to(outside)
        link = Artifact(sha256=digest(body(1)), size=len(body(1)), file=area / "link")
        await storage.store([*artifacts, link])
    assert_stored(storage, [*artifacts, link], [body(0), body(1)])
    assert not link.file.is_symlink()
    assert outside.read_bytes() == body(1)


async def test_a_rename_across_filesystems_is_a_copy_by_the_worker_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker_reads: list[Path]
) -> None:
    """A download's rename that fails with EXDEV (the temporary directory on another
    filesystem) hands that file and the next to the worker's way, which copies them."""
    real_replace = os.replace
    refused: list[str] = []

    def across(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        if os.path.basename(source).startswith("download-"):
            refused.append(os.path.basename(source))
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", across)
    storage = ArtifactStorage(tmp_path)
    bodies = [body(0), body(1)]
    async with storage.temporary_area() as area:
        artifacts = downloads(area, bodies)
        await storage.store(artifacts)
        assert list(area.iterdir()) == [area / ".in-use"]
    assert refused == ["download-0", "download-0", "download-1"]
    assert worker_reads == [area / "download-0", area / "download-1"]
    assert_stored(storage, artifacts, bodies)


async def test_a_failed_fsync_is_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    storage = ArtifactStorage(tmp_path)
    async with storage.temporary_area() as area:
        await store_one_refused(storage, area, "Input/output error")
        assert (area / "download-0").exists()
    assert not storage.path_for(digest(body(0))).exists()


async def store_one_refused(storage: ArtifactStorage, area: Path, match: str) -> None:
    """Storing one small download fails with a StorageError matching ``match``."""
    with pytest.raises(StorageError, match=match):
        await storage.store(downloads(area, [body(0)]))


@pytest.mark.parametrize(
    ("path", "directory", "inside"),
    [
        ("/srv/tmp/area/file", "/srv/tmp", True),
        ("/srv/tmp", "/srv/tmp", True),
        ("/srv/tmpx/file", "/srv/tmp", False),
        ("/srv/other", "/srv/tmp", False),
        ("/srv/tmp/file", "/", True),
        ("/", "/", True),
    ],
)
def test_what_lies_within_a_temporary_directory(path: str, directory: str, inside: bool) -> None:
    """A prefix is not enough (``tmpx`` is not inside ``tmp``), and the root holds all."""
    assert _storage._is_within(path, [directory]) is inside


async def test_a_folder_that_cannot_be_synced_is_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event loop's way reports a failed folder sync as the worker thread's does."""
    real_fsync_all = _storage._fsync_all

    def failing_for_folders(fds: list[int]) -> None:
        if any(stat.S_ISDIR(os.fstat(fd).st_mode) for fd in fds):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync_all(fds)

    monkeypatch.setattr(_storage, "_fsync_all", failing_for_folders)
    storage = ArtifactStorage(tmp_path)
    async with storage.temporary_area() as area:
        await store_one_refused(storage, area, "could not sync the folders")
