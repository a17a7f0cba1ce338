"""Artifact storage verifies every file it takes in: nothing sits at a digest it does not have."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from stageline import ArtifactIntegrityError, StorageError
from stageline.models import Artifact
from stageline.storage import ArtifactStorage

pytestmark = pytest.mark.anyio


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_files(storage: ArtifactStorage) -> list[Path]:
    if not storage.artifacts_dir.exists():
        return []
    return sorted(p for p in storage.artifacts_dir.rglob("*") if p.is_file())


@pytest.fixture
def renames_into_storage(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, str]]:
    """Every rename whose destination is an artifact path, with the sha256 of what it moved.

    Recorded at the instant of the rename, before it happens: a file renamed to a digest
    it does not have would sit there, if only until a later check removed it.
    """
    seen: list[tuple[Path, str]] = []

    def recording(real: Callable[..., None]) -> Callable[..., None]:
        def rename(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
            destination = Path(target)
            if destination.parent.parent.name == "artifacts" and not destination.name.startswith(
                "."
            ):
                seen.append((destination, digest(Path(source).read_bytes())))
            real(source, target)

        return rename

    monkeypatch.setattr(os, "replace", recording(os.replace))
    monkeypatch.setattr(os, "rename", recording(os.rename))
    return seen


def assert_every_rename_kept_its_digest(seen: list[tuple[Path, str]]) -> None:
    for destination, actual in seen:
        assert destination.parent.name + destination.name == actual, destination


async def test_a_downloaded_file_with_other_bytes_is_refused(
    tmp_path: Path, renames_into_storage: list[tuple[Path, str]]
) -> None:
    """A temporary file whose sha256 differs is refused, naming it, and never renamed in."""
    storage = ArtifactStorage(tmp_path)
    async with storage.temporary_area() as area:
        source = area / "download"
        source.write_bytes(b"tampered")
        artifact = Artifact(sha256=digest(b"expected"), size=8, file=source)
        with pytest.raises(ArtifactIntegrityError) as caught:
            await storage.store([artifact])
        assert artifact.file == source
    error = caught.value
    assert isinstance(error, StorageError)
    assert error.path == source
    assert (error.expected_sha256, error.actual_sha256) == (
        digest(b"expected"),
        digest(b"tampered"),
    )
    for part in (str(source), digest(b"expected"), digest(b"tampered")):
        assert part in str(error)
    assert stored_files(storage) == []
    assert renames_into_storage == []


async def test_a_plugin_file_with_other_bytes_is_refused(
    tmp_path: Path, renames_into_storage: list[tuple[Path, str]]
) -> None:
    """A copied file whose sha256 differs is refused; the plugin's file is left as it was."""
    storage = ArtifactStorage(tmp_path / "storage")
    source = tmp_path / "mine"
    source.write_bytes(b"not what it claims")
    artifact = Artifact(sha256=digest(b"claimed"), file=source)
    with pytest.raises(ArtifactIntegrityError, match=digest(b"claimed")) as caught:
        await storage.store([artifact])
    assert caught.value.actual_sha256 == digest(b"not what it claims")
    assert str(source) in str(caught.value)
    assert source.read_bytes() == b"not what it claims"
    assert stored_files(storage) == []
    assert renames_into_storage == []
    # The partial copy went with the scratch area.
    assert [p for p in storage.root.rglob("*") if p.is_file()] == []


async def test_a_file_of_another_size_than_declared_is_refused(tmp_path: Path) -> None:
    """A file whose sha256 matches but whose declared size does not is refused, moved or copied."""
    storage = ArtifactStorage(tmp_path / "storage")
    outside = tmp_path / "outside"
    outside.write_bytes(b"twelve bytes")
    async with storage.temporary_area() as area:
        inside = area / "download"
        inside.write_bytes(b"twelve bytes")
        for source in (inside, outside):
            artifact = Artifact(sha256=digest(b"twelve bytes"), size=13, file=source)
            with pytest.raises(ArtifactIntegrityError, match="size") as caught:
                await storage.store([artifact])
            assert (caught.value.expected_size, caught.value.actual_size) == (13, 12)
            assert caught.value.path == source
            assert source.exists()
    assert stored_files(storage) == []


async def test_one_bad_file_does_not_stop_the_files_before_it(tmp_path: Path) -> None:
    """Files stored before a refused one are in place; the refused one and later ones are not."""
    storage = ArtifactStorage(tmp_path)
    async with storage.temporary_area() as area:
        (area / "good").write_bytes(b"good")
        (area / "bad").write_bytes(b"bad")
        good = Artifact(sha256=digest(b"good"), file=area / "good")
        bad = Artifact(sha256=digest(b"other"), file=area / "bad")
        with pytest.raises(ArtifactIntegrityError):
            await storage.store([good, bad])
    assert good.file == storage.path_for(digest(b"good"))
    assert stored_files(storage) == [storage.path_for(digest(b"good"))]


@pytest.mark.parametrize("corruption", ["same size", "truncated"])
@pytest.mark.parametrize("origin", ["download", "plugin file", "store_bytes"])
async def test_a_corrupt_stored_file_is_replaced_by_the_verified_one(
    tmp_path: Path,
    renames_into_storage: list[tuple[Path, str]],
    caplog: pytest.LogCaptureFixture,
    corruption: str,
    origin: str,
) -> None:
    """When the file already at a digest has other bytes, the verified new copy replaces it."""
    caplog.set_level(logging.WARNING, logger="stageline.storage")
    storage = ArtifactStorage(tmp_path / "storage")
    data = b"the real bytes of the artifact"
    target = (await storage.store_bytes(data)).file
    assert target is not None
    target.write_bytes(b"X" * len(data) if corruption == "same size" else data[:5])
    renames_into_storage.clear()

    if origin == "store_bytes":
        artifact = await storage.store_bytes(data)
    elif origin == "plugin file":
        source = tmp_path / "plugin-file"
        source.write_bytes(data)
        artifact = Artifact(sha256=digest(data), size=len(data), file=source)
        await storage.store([artifact])
        assert source.read_bytes() == data
    else:
        async with storage.temporary_area() as area:
            (area / "download").write_bytes(data)
            artifact = Artifact(sha256=digest(data), size=len(data), file=area / "download")
            await storage.store([artifact])

    assert artifact.file == target
    assert target.read_bytes() == data
    assert len(renames_into_storage) == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"artifact file {target} was damaged "
        + (
            "(sha256 " + digest(b"X" * len(data))
            if corruption == "same size"
            else "(5 bytes, not 30"
        )
        + "); replacing it with a verified copy"
    ]
    assert_every_rename_kept_its_digest(renames_into_storage)


async def test_an_intact_stored_file_is_kept_and_the_new_copy_dropped(
    tmp_path: Path, renames_into_storage: list[tuple[Path, str]]
) -> None:
    """Storing a digest already held intact renames nothing: the existing file stays."""
    storage = ArtifactStorage(tmp_path)
    data = b"stored once"
    target = (await storage.store_bytes(data)).file
    assert target is not None
    inode = target.stat().st_ino
    renames_into_storage.clear()
    async with storage.temporary_area() as area:
        (area / "again").write_bytes(data)
        artifact = Artifact(sha256=digest(data), size=len(data), file=area / "again")
        await storage.store([artifact])
        assert not (area / "again").exists()
    again = await storage.store_bytes(data)
    assert (artifact.file, again.file) == (target, target)
    assert renames_into_storage == []
    assert target.stat().st_ino == inode


async def test_a_file_already_in_place_is_checked_by_its_size(tmp_path: Path) -> None:
    """An artifact whose file is its storage path is refused when the size differs or it is gone."""
    storage = ArtifactStorage(tmp_path)
    artifact = await storage.store_bytes(b"in place")
    assert artifact.file is not None
    await storage.store([artifact])  # intact: nothing to do
    artifact.file.write_bytes(b"in plac")
    with pytest.raises(ArtifactIntegrityError, match="size") as caught:
        await storage.store([artifact])
    assert caught.value.path == artifact.file
    assert (caught.value.expected_size, caught.value.actual_size) == (8, 7)
    artifact.file.unlink()
    with pytest.raises(StorageError, match="could not store"):
        await storage.store([artifact])


async def test_many_files_in_one_store_are_each_verified(
    tmp_path: Path, renames_into_storage: list[tuple[Path, str]]
) -> None:
    """A store of many small files renames each into place once, each at its own digest."""
    storage = ArtifactStorage(tmp_path)
    async with storage.temporary_area() as area:
        artifacts = []
        for number in range(200):
            data = number.to_bytes(2, "big") * 512
            (area / str(number)).write_bytes(data)
            artifacts.append(Artifact(sha256=digest(data), size=len(data), file=area / str(number)))
        await storage.store(artifacts)
    assert len(renames_into_storage) == 200
    assert_every_rename_kept_its_digest(renames_into_storage)
    assert len(stored_files(storage)) == 200


async def test_a_download_on_another_filesystem_is_copied_in_and_checked(
    tmp_path: Path,
    renames_into_storage: list[tuple[Path, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When renames out of tmp/ cross filesystems, the file is copied in, verified, then renamed."""
    import errno

    storage = ArtifactStorage(tmp_path)
    recording_replace = os.replace

    def across_filesystems(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        # tmp/ and artifacts/ on two filesystems: a condition no test machine offers on demand.
        if Path(source).is_relative_to(storage.temp_root):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        recording_replace(source, target)

    monkeypatch.setattr(os, "replace", across_filesystems)
    data = b"downloaded elsewhere"
    async with storage.temporary_area() as area:
        (area / "download").write_bytes(data)
        artifact = Artifact(sha256=digest(data), size=len(data), file=area / "download")
        await storage.store([artifact])
        assert not (area / "download").exists()
    assert artifact.file == storage.path_for(digest(data))
    assert artifact.file.read_bytes() == data
    assert len(renames_into_storage) == 1
    assert_every_rename_kept_its_digest(renames_into_storage)
    assert stored_files(storage) == [artifact.file]
    assert list(storage.temp_root.iterdir()) == []


async def test_a_symlink_in_the_temporary_area_is_copied_not_moved(tmp_path: Path) -> None:
    """A symlink is never renamed into storage: its target's bytes are copied, verified."""
    storage = ArtifactStorage(tmp_path)
    data = b"behind a link"
    async with storage.temporary_area() as area:
        real = area / "real"
        real.write_bytes(data)
        link = area / "link"
        link.symlink_to(real)
        artifact = Artifact(sha256=digest(data), size=len(data), file=link)
        await storage.store([artifact])
        real.write_bytes(b"changed after the store")
    assert artifact.file == storage.path_for(digest(data))
    assert not artifact.file.is_symlink()
    assert artifact.file.read_bytes() == data


async def test_each_file_is_read_once_and_a_held_one_only_when_it_comes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads per store: a new download one, a held digest two, an artifact in place none."""
    from stageline.storage import _integrity

    # A download's file is read through a descriptor (measure_open, which measure_own
    # uses too), noted as "download"; any other file by path.
    reads: list[Path | str] = []
    real_measure = _integrity.FileReader.measure
    real_measure_open = _integrity.FileReader.measure_open

    def counting(
        self: _integrity.FileReader, path: Path, *, sync: bool = False
    ) -> _integrity.Measured:
        reads.append(path)
        return real_measure(self, path, sync=sync)

    def counting_open(self: _integrity.FileReader, fd: int) -> _integrity.Measured:
        reads.append("download")
        return real_measure_open(self, fd)

    monkeypatch.setattr(_integrity.FileReader, "measure", counting)
    monkeypatch.setattr(_integrity.FileReader, "measure_open", counting_open)
    storage = ArtifactStorage(tmp_path)
    data = b"read as few times as possible"
    target = storage.path_for(digest(data))
    async with storage.temporary_area() as area:
        (area / "first").write_bytes(data)
        artifact = Artifact(sha256=digest(data), size=len(data), file=area / "first")
        await storage.store([artifact])
        assert reads == ["download"]

        reads.clear()
        (area / "again").write_bytes(data)
        await storage.store([Artifact(sha256=digest(data), size=len(data), file=area / "again")])
        assert reads == ["download", target]

    reads.clear()
    await storage.store([artifact])
    assert reads == []


@pytest.mark.parametrize("extra", [-1, 0, 1])
@pytest.mark.parametrize("chunks", [0, 1, 3])
def test_measure_own_reads_any_size_as_measure_does(
    tmp_path: Path, chunks: int, extra: int
) -> None:
    """The short-read shortcut ends at the file's end, also at and around the buffer's size."""
    from stageline.storage import _integrity

    size = max(0, chunks * _integrity._CHUNK + extra)
    path = tmp_path / "file"
    path.write_bytes(os.urandom(size))
    reader = _integrity.FileReader()
    assert reader.measure_own(path) == reader.measure(path) == (size, digest(path.read_bytes()))


def test_measure_own_refuses_a_symlink(tmp_path: Path) -> None:
    """Where the platform can, the open itself refuses a link (the storage copies it then)."""
    import errno

    from stageline.storage import _integrity

    if not _integrity.NO_FOLLOW:
        pytest.skip("this platform has no O_NOFOLLOW; the storage checks for a link itself")
    (tmp_path / "real").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OSError, match="symbolic link") as info:
        _integrity.FileReader().measure_own(tmp_path / "link")
    assert info.value.errno == errno.ELOOP


async def test_a_short_read_before_the_end_is_read_again_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filesystem whose read ends short mid-file costs a second read, not a refusal."""
    real_readv = os.readv
    calls = 0

    def short_read(fd: int, buffers: list[memoryview]) -> int:
        nonlocal calls
        calls += 1
        return real_readv(fd, [buffers[0][:3]])  # three bytes, then "the end"

    from stageline.storage import _integrity

    monkeypatch.setattr(_integrity, "_READV", short_read)
    storage = ArtifactStorage(tmp_path)
    data = b"read in two goes on some filesystems"
    async with storage.temporary_area() as area:
        (area / "download").write_bytes(data)
        artifact = Artifact(sha256=digest(data), size=len(data), file=area / "download")
        await storage.store([artifact])
    # Read short by the event loop's way, then by the worker thread's, which then read it
    # whole with measure(), through a file object.
    assert calls == 2
    assert artifact.file == storage.path_for(digest(data))
    assert artifact.file.read_bytes() == data
