"""DigestingWriter on its own: the temporary file it makes and how it writes it."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
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


def writer_for(data: bytes, directory: Path | None, **options: int) -> DigestingWriter:
    """A writer expecting ``data``; with ``directory=None`` it writes into the current
    temporary area."""
    return DigestingWriter(
        url="http://127.0.0.1/a.bin",
        expected_digests={"sha256": hashlib.sha256(data).hexdigest()},
        expected_size=len(data),
        allowed_digests=DEFAULT_ALLOWED_DIGESTS,
        directory=directory,
        **options,
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


async def test_missing_temporary_area_is_created(tmp_path: Path) -> None:
    """A temporary area that does not exist (yet, or any more) is made on first use."""
    area = tmp_path / "removed" / "area"
    with use_temp_dir(area):
        async with writer_for(DATA, None) as writer:
            await writer.consume(chunks(DATA))
            path, _ = writer.finish()
    assert path.parent == area
    assert path.read_bytes() == DATA


async def test_uncreatable_temporary_area_is_one_clear_storage_error(tmp_path: Path) -> None:
    """An area that cannot be made (a dangling symlink in its place) fails at once."""
    area = tmp_path / "area"
    area.symlink_to(tmp_path / "nowhere" / "at all")
    with use_temp_dir(area):
        async with writer_for(DATA, None) as writer:
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


async def test_the_first_failure_is_the_one_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body that breaks while a worker is writing raises that break, not a later error.

    The worker's error always won: a connection reset mid-body, followed by a full disk
    in the batch being written, was reported as the StorageError alone.
    """
    real_write = os.write
    writing = threading.Event()
    body_broke = threading.Event()

    def write_into_a_full_disk(fd: int, data: bytes | memoryview, /) -> int:
        if writing.is_set():
            return real_write(fd, data)  # pragma: no cover - one batch is written
        writing.set()
        body_broke.wait(5)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    async def breaking_body() -> AsyncIterator[bytes]:
        yield DATA  # one full batch: handed to the workers
        yield DATA[:10]
        await anyio.to_thread.run_sync(writing.wait, 5)
        body_broke.set()
        raise ConnectionResetError("the server reset the connection")

    monkeypatch.setattr(os, "write", write_into_a_full_disk)
    fds_before = sorted(os.listdir("/proc/self/fd"))
    async with writer_for(DATA * 2, tmp_path, batch_size=len(DATA)) as writer:
        with pytest.raises(ConnectionResetError):
            await writer.consume(breaking_body())
    assert files_in(tmp_path) == []
    assert sorted(os.listdir("/proc/self/fd")) == fds_before


async def test_a_full_disk_mid_body_is_one_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC in the writing worker is a StorageError, with no file or fd left behind."""
    real_write = os.write
    writes: list[int] = []

    def fill_up(fd: int, data: bytes | memoryview, /) -> int:
        writes.append(len(data))
        if len(writes) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", fill_up)
    fds_before = sorted(os.listdir("/proc/self/fd"))
    async with writer_for(DATA * 8, tmp_path, batch_size=len(DATA)) as writer:
        with pytest.raises(StorageError, match="No space left"):
            await writer.consume(chunks(DATA * 8))
    assert files_in(tmp_path) == []
    assert sorted(os.listdir("/proc/self/fd")) == fds_before


async def test_a_worker_failure_is_raised_unwrapped(tmp_path: Path) -> None:
    """Any failure in a worker is raised as itself, never as an ExceptionGroup.

    Only StorageError was unwrapped: a body of str chunks (a plugin's mistake) escaped
    from a large body's workers as an ExceptionGroup holding the TypeError.
    """

    async def text_body() -> AsyncIterator[str]:
        for _ in range(4):
            yield "x" * len(DATA)

    async with writer_for(DATA * 4, tmp_path, batch_size=len(DATA)) as writer:
        with pytest.raises(TypeError):
            await writer.consume(text_body())  # type: ignore[arg-type]
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("cancel_at", range(8))
async def test_a_cancelled_large_body_leaves_nothing(tmp_path: Path, cancel_at: int) -> None:
    """Cancelled at any chunk of a large body, the writer leaves no file and no open fd."""
    piece = len(DATA) // 2
    fds_before = sorted(os.listdir("/proc/self/fd"))
    with anyio.CancelScope() as scope:

        async def body() -> AsyncIterator[bytes]:
            for index in range(8):
                if index == cancel_at:
                    scope.cancel()
                yield DATA[:piece]

        async with (
            contextlib.aclosing(body()) as pieces,
            writer_for(DATA[:piece] * 8, tmp_path, batch_size=piece) as writer,
        ):
            await writer.consume(pieces)  # batches queued and in the workers
            writer.finish()
    assert scope.cancelled_caught
    assert files_in(tmp_path) == []
    assert sorted(os.listdir("/proc/self/fd")) == fds_before
