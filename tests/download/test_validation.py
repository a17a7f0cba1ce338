"""DigestingWriter on its own: the temporary file it makes and how it writes it."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stageline import StorageError
from stageline.download import DEFAULT_ALLOWED_DIGESTS, DigestingWriter
from stageline.storage import use_temp_dir

from ._servers import files_in

pytestmark = pytest.mark.anyio

DATA = bytes(range(256)) * 400  # 100 KiB


async def chunks(data: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def writer_for(data: bytes, directory: Path) -> DigestingWriter:
    return DigestingWriter(
        url="http://127.0.0.1/a.bin",
        expected_digests={"sha256": hashlib.sha256(data).hexdigest()},
        expected_size=len(data),
        allowed_digests=DEFAULT_ALLOWED_DIGESTS,
        directory=directory,
    )


async def test_file_is_private_and_named_for_downloads(tmp_path: Path) -> None:
    """The temporary file is created owner-only, as download-*, with every byte and digest."""
    async with writer_for(DATA, tmp_path) as writer:
        await writer.consume(chunks(DATA))
        path, attributes = writer.finish()
    assert path.parent == tmp_path
    assert path.name.startswith("download-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == DATA
    assert attributes == {
        "size": len(DATA),
        **{name: hashlib.new(name, DATA).hexdigest() for name in sorted(DEFAULT_ALLOWED_DIGESTS)},
    }


async def test_two_writers_never_share_a_file(tmp_path: Path) -> None:
    """Each writer creates its own file, even in the same directory."""
    paths = []
    for _ in range(2):
        async with writer_for(DATA, tmp_path) as writer:
            await writer.consume(chunks(DATA))
            paths.append(writer.finish()[0])
    assert paths[0] != paths[1]
    assert files_in(tmp_path) == sorted(paths)


async def test_short_writes_are_continued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the OS writes only part of a buffer, the rest is written until the file is whole."""
    real_write = os.write
    sizes: list[int] = []

    def short_write(fd: int, data: bytes | memoryview, /) -> int:
        sizes.append(len(data))
        return real_write(fd, data[:7000])

    async with writer_for(DATA, tmp_path) as writer:
        await writer.consume(chunks(DATA))
        with monkeypatch.context() as patch:  # finish() writes a small body synchronously
            patch.setattr(os, "write", short_write)
            path, _ = writer.finish()
    assert path.read_bytes() == DATA
    assert sizes[0] == len(DATA)
    assert len(sizes) == -(-len(DATA) // 7000)


async def test_discard_removes_the_file(tmp_path: Path) -> None:
    """Leaving the writer without finish() removes the file it created."""
    async with writer_for(DATA * 30, tmp_path) as writer:  # 3 MB: written while consuming
        await writer.consume(chunks(DATA * 30, 256 * 1024))
        assert writer.path is not None
        assert writer.path.exists()
    assert files_in(tmp_path) == []


def area_writer(data: bytes) -> DigestingWriter:
    """A writer with no directory of its own: it writes into the current temporary area."""
    return DigestingWriter(
        url="http://127.0.0.1/a.bin",
        expected_digests={},
        expected_size=len(data),
        allowed_digests=DEFAULT_ALLOWED_DIGESTS,
    )


async def test_missing_temporary_area_is_created(tmp_path: Path) -> None:
    """A temporary area that does not exist (yet, or any more) is made on first use."""
    area = tmp_path / "removed" / "area"
    with use_temp_dir(area):
        async with area_writer(DATA) as writer:
            await writer.consume(chunks(DATA))
            path, _ = writer.finish()
    assert path.parent == area
    assert path.read_bytes() == DATA


async def test_uncreatable_temporary_area_is_one_clear_storage_error(tmp_path: Path) -> None:
    """An area that cannot be made (a dangling symlink in its place) fails at once."""
    area = tmp_path / "area"
    area.symlink_to(tmp_path / "nowhere" / "at all")
    with use_temp_dir(area):
        async with area_writer(DATA) as writer:
            await writer.consume(chunks(DATA))
            with pytest.raises(StorageError, match="cannot create the temporary directory"):
                writer.finish()
    assert files_in(tmp_path) == [area]


async def test_explicit_directory_is_never_created(tmp_path: Path) -> None:
    """A directory given to the writer must exist: it is not the writer's to create."""
    async with writer_for(DATA, tmp_path / "missing") as writer:
        await writer.consume(chunks(DATA))
        with pytest.raises(StorageError, match="cannot create a temporary file"):
            writer.finish()
    assert not (tmp_path / "missing").exists()
