"""Artifact storage: content-addressed layout, atomic moves, reading back, temporary areas."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

import anyio
import pytest

from stageline import StorageError
from stageline.models import Artifact
from stageline.storage import ArtifactStorage, current_temp_dir

pytestmark = pytest.mark.anyio


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_layout_is_content_addressed(tmp_path: Path) -> None:
    """A file with sha256 "abcd…" lives at artifacts/ab/cd…."""
    storage = ArtifactStorage(tmp_path)
    sha = digest(b"x")
    assert storage.path_for(sha) == tmp_path / "artifacts" / sha[:2] / sha[2:]
    with pytest.raises(ValueError, match="64 lower-case hex"):
        storage.path_for("abc")


async def test_downloaded_file_is_moved_into_place(tmp_path: Path) -> None:
    """A file in the temporary area is renamed into storage and the artifact points at it."""
    storage = ArtifactStorage(tmp_path)
    async with storage.temporary_area() as area:
        assert current_temp_dir() == area
        source = area / "download"
        source.write_bytes(b"hello")
        artifact = Artifact(sha256=digest(b"hello"), size=5, file=source)
        await storage.store([artifact])
        assert not source.exists()
    assert artifact.file == storage.path_for(digest(b"hello"))
    assert await storage.read_bytes(artifact) == b"hello"
    assert await storage.exists(digest(b"hello"))
    leftovers = [p.name for p in storage.artifacts_dir.rglob("*") if p.name.endswith(".partial")]
    assert leftovers == []


async def test_outside_file_is_copied_not_moved(tmp_path: Path) -> None:
    """A plugin's own file (outside the temporary areas) is copied and kept."""
    storage = ArtifactStorage(tmp_path / "storage")
    source = tmp_path / "mine.txt"
    source.write_bytes(b"keep me")
    artifact = Artifact(sha256=digest(b"keep me"), file=source)
    await storage.store([artifact])
    assert source.read_bytes() == b"keep me"
    assert artifact.file is not None
    assert artifact.file.read_bytes() == b"keep me"
    assert artifact.file != source


async def test_storing_a_known_digest_drops_the_new_copy(tmp_path: Path) -> None:
    """When the storage already holds the digest, the temporary copy is removed."""
    storage = ArtifactStorage(tmp_path)
    first = await storage.store_bytes(b"same")
    async with storage.temporary_area() as area:
        again = area / "again"
        again.write_bytes(b"same")
        artifact = Artifact(sha256=first.sha256, file=again)
        await storage.store([artifact])
        assert not again.exists()
    assert artifact.file == first.file


async def test_store_bytes_computes_every_digest(tmp_path: Path) -> None:
    """store_bytes returns an unsaved artifact with size, every digest and its file."""
    storage = ArtifactStorage(tmp_path)
    artifact = await storage.store_bytes(b"data")
    assert artifact.size == 4
    assert artifact.sha512 == hashlib.sha512(b"data").hexdigest()
    assert artifact.md5 == hashlib.md5(b"data").hexdigest()
    assert not artifact.saved
    async with await storage.open(artifact) as f:
        assert await f.read() == b"data"


async def test_missing_file_is_a_storage_error(tmp_path: Path) -> None:
    """Storing a file that is gone, or reading an artifact not stored, is a StorageError."""
    storage = ArtifactStorage(tmp_path)
    gone = Artifact(sha256=digest(b"gone"), file=tmp_path / "nothing")
    with pytest.raises(StorageError, match="could not store"):
        await storage.store([gone])
    with pytest.raises(StorageError, match="not in storage"):
        await storage.read_bytes(Artifact(sha256=digest(b"gone")))
    with pytest.raises(ValueError, match="needs a sha256 and a file"):
        await storage.store([Artifact(sha256=digest(b"x"))])


async def test_temporary_area_is_removed_on_error(tmp_path: Path) -> None:
    """The temporary area and its files are removed when the block raises."""
    storage = ArtifactStorage(tmp_path)
    seen: list[Path] = []

    async def fail() -> None:
        async with storage.temporary_area() as area:
            seen.append(area)
            (area / "partial").write_bytes(b"x" * 10)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail()
    assert not seen[0].exists()
    assert current_temp_dir() != seen[0]


async def test_temporary_area_is_removed_on_cancellation(tmp_path: Path) -> None:
    """The temporary area is removed when the sync is cancelled, even though shielding."""
    storage = ArtifactStorage(tmp_path)
    seen: list[Path] = []
    with anyio.CancelScope() as scope:
        async with storage.temporary_area() as area:
            seen.append(area)
            (area / "partial").write_bytes(b"x")
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert not seen[0].exists()


async def test_tasks_inherit_the_temporary_area(tmp_path: Path) -> None:
    """Tasks started inside the block see the same current_temp_dir."""
    storage = ArtifactStorage(tmp_path)
    seen: list[Path] = []

    async def child() -> None:
        seen.append(current_temp_dir())

    async with storage.temporary_area() as area, anyio.create_task_group() as tg:
        tg.start_soon(child)
    assert seen == [area]


async def test_abandoned_areas_are_swept_but_live_ones_kept(tmp_path: Path) -> None:
    """An area whose lock is free (its process died) is removed; a locked one stays."""
    storage = ArtifactStorage(tmp_path)
    abandoned = storage.temp_root / "123-dead"
    abandoned.mkdir(parents=True)
    (abandoned / ".in-use").touch()
    (abandoned / "half-download").write_bytes(b"x")
    live = storage.temp_root / "456-live"
    live.mkdir()
    fd = os.open(live / ".in-use", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        async with storage.temporary_area():
            assert not abandoned.exists()
            assert live.exists()
    finally:
        os.close(fd)


async def test_file_in_the_current_temp_dir_is_moved(tmp_path: Path) -> None:
    """A download made in a temp dir set with use_temp_dir is moved, not copied."""
    from stageline.storage import use_temp_dir

    storage = ArtifactStorage(tmp_path / "storage")
    with use_temp_dir(tmp_path / "elsewhere") as temp:
        source = current_temp_dir() / "download"
        source.write_bytes(b"moved")
        artifact = Artifact(sha256=digest(b"moved"), file=source)
        await storage.store([artifact])
    assert temp == tmp_path / "elsewhere"
    assert not source.exists()
    assert artifact.file == storage.path_for(digest(b"moved"))


async def test_an_area_being_created_is_not_swept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync sweeping while another creates its area leaves the new area alone."""
    from stageline.storage import _areas

    storage = ArtifactStorage(tmp_path)
    real_flock = fcntl.flock
    swept: list[bool] = []

    def flock_after_a_concurrent_sweep(fd: int, operation: int) -> None:
        # The creator is about to lock its new area: another process sweeps this instant.
        if operation == fcntl.LOCK_EX and not swept:
            swept.append(True)
            _areas.sweep_abandoned(storage.temp_root)
        real_flock(fd, operation)

    monkeypatch.setattr(_areas.fcntl, "flock", flock_after_a_concurrent_sweep)
    async with storage.temporary_area() as area:
        assert swept == [True]
        assert area.is_dir()
        (area / "download").write_bytes(b"x")


_KILLED_MID_COPY = """
import os, signal, sys
import anyio
from stageline.models import Artifact
from stageline.storage import ArtifactStorage

root, source, sha256 = sys.argv[1:]

def killed(*args):
    os.kill(os.getpid(), signal.SIGKILL)

os.replace = killed  # the process dies once the copy is written, before it is renamed
anyio.run(ArtifactStorage(root).store, [Artifact(sha256=sha256, file=source)])
"""


async def test_a_copy_killed_midway_leaves_nothing_the_next_sync_keeps(tmp_path: Path) -> None:
    """A process killed while copying a file in leaves its partial copy to the next sweep."""
    import signal
    import subprocess
    import sys

    storage = ArtifactStorage(tmp_path / "storage")
    source = tmp_path / "plugin-file"
    source.write_bytes(b"copied in")
    child = await anyio.run_process(
        [
            sys.executable,
            "-c",
            _KILLED_MID_COPY,
            str(storage.root),
            str(source),
            digest(b"copied in"),
        ],
        check=False,
        stderr=subprocess.STDOUT,
    )
    assert child.returncode == -signal.SIGKILL, child.stdout
    assert not storage.path_for(digest(b"copied in")).exists()
    assert [p for p in storage.artifacts_dir.rglob("*") if p.is_file()] == []
    async with storage.temporary_area() as area:
        assert [p for p in storage.root.rglob("*") if p.is_file()] == [area / ".in-use"]


async def test_an_area_whose_lock_cannot_be_opened_is_left_alone(tmp_path: Path) -> None:
    """A stale area stageline cannot inspect (e.g. another user's) blocks no new sync."""
    storage = ArtifactStorage(tmp_path)
    odd = storage.temp_root / "789-odd"
    (odd / ".in-use").mkdir(parents=True)  # opening it for writing fails (not ENOENT)
    async with storage.temporary_area() as area:
        assert area.is_dir()
    assert odd.exists()


async def test_an_unreadable_artifact_is_a_storage_error(tmp_path: Path) -> None:
    """Reading an artifact whose file became unreadable is a StorageError naming it."""
    storage = ArtifactStorage(tmp_path)
    artifact = await storage.store_bytes(b"content")
    path = storage.path_for(digest(b"content"))
    path.unlink()
    path.mkdir()  # a directory where the file was: the read fails
    with pytest.raises(StorageError, match=digest(b"content")):
        await storage.read_bytes(artifact)


def _sharing_a_folder(count: int) -> list[bytes]:
    """``count`` distinct bodies whose files land in one storage folder (same 2-hex prefix)."""
    by_prefix: dict[str, list[bytes]] = {}
    number = 0
    while True:
        data = b"body %d" % number
        group = by_prefix.setdefault(digest(data)[:2], [])
        group.append(data)
        if len(group) == count:
            return group
        number += 1


async def test_each_folder_is_synced_once_per_call_after_its_files_are_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three files in one folder and one elsewhere: each file is synced before its rename,
    and each folder once, when every file of the call is already at its place."""
    storage = ArtifactStorage(tmp_path)
    bodies = [*_sharing_a_folder(3), b"elsewhere"]
    targets = [storage.path_for(digest(data)) for data in bodies]
    synced: list[tuple[Path, bool]] = []  # (what, every target in place by then)
    real_fsync = os.fsync

    def recording(fd: int) -> None:
        what = Path(os.readlink(f"/proc/self/fd/{fd}"))
        synced.append((what, all(t.exists() for t in targets)))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    async with storage.temporary_area() as area:
        artifacts = []
        for number, data in enumerate(bodies):
            (area / f"d{number}").write_bytes(data)
            artifacts.append(Artifact(sha256=digest(data), file=area / f"d{number}"))
        await storage.store(artifacts)
    folders = [(path, ready) for path, ready in synced if path.is_dir()]
    assert sorted(path for path, _ in folders) == sorted({t.parent for t in targets})
    assert all(ready for _, ready in folders)
    files = [path for path, _ in synced if not path.is_dir()]
    assert sorted(files) == sorted(area / f"d{n}" for n in range(len(bodies)))
    assert [await storage.read_bytes(a) for a in artifacts] == bodies


async def test_a_folder_that_cannot_be_synced_is_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stageline.storage import _storage

    def failing(path: Path, *, directory: bool = False) -> None:
        if directory:
            raise OSError(5, "Input/output error")

    monkeypatch.setattr(_storage, "_fsync_path", failing)
    storage = ArtifactStorage(tmp_path)
    async with storage.temporary_area() as area:
        (area / "d").write_bytes(b"data")
        with pytest.raises(StorageError, match="could not sync the folders"):
            await storage.store([Artifact(sha256=digest(b"data"), file=area / "d")])


async def test_a_file_beside_the_temporary_root_with_a_longer_name_is_copied(
    tmp_path: Path,
) -> None:
    """``root/tmpx/file`` is not inside the temporary root ``root/tmp``: it is copied and
    kept, as any file of the plugin's own."""
    storage = ArtifactStorage(tmp_path)
    async with storage.temporary_area():
        beside = tmp_path / (storage.temp_root.name + "x")
        beside.mkdir()
        source = beside / "mine"
        source.write_bytes(b"mine")
        artifact = Artifact(sha256=digest(b"mine"), file=source)
        await storage.store([artifact])
    assert source.read_bytes() == b"mine"
    assert artifact.file == storage.path_for(digest(b"mine"))
