"""The file:// downloader: same validation as HTTP, reading off the event loop."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import threading
from pathlib import Path

import anyio
import pytest

from stageline import DigestMismatch, DownloadError, SizeMismatch
from stageline.download import DownloaderFactory, FileDownloader
from stageline.models import Remote

from ._servers import files_in

pytestmark = pytest.mark.anyio

DATA = b"local file " * 300_000  # ~3.3 MB: several read batches


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source" / "a file.bin"
    path.parent.mkdir()
    path.write_bytes(DATA)
    return path


async def test_file_url_success(source: Path, temp_dir: Path) -> None:
    """A file:// url is copied to the temporary area with size and digests."""
    url = source.as_uri()
    remote = Remote(url=source.parent.as_uri())
    async with DownloaderFactory() as factory:
        downloader = factory.get_downloader(
            remote,
            url=url,
            expected_digests={"sha384": hashlib.sha384(DATA).hexdigest()},
            expected_size=len(DATA),
        )
        assert isinstance(downloader, FileDownloader)
        result = await downloader.run()
    assert result.path.parent == temp_dir
    assert result.path.read_bytes() == DATA
    assert result.artifact_attributes["size"] == len(DATA)
    assert result.artifact_attributes["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert dict(result.headers) == {}


async def test_file_url_digest_mismatch(source: Path, temp_dir: Path) -> None:
    """A local file with the wrong digest raises DigestMismatch and leaves no copy."""
    remote = Remote(url=source.parent.as_uri())
    async with DownloaderFactory() as factory:
        with pytest.raises(DigestMismatch) as info:
            await factory.get_downloader(
                remote, url=source.as_uri(), expected_digests={"sha256": "1" * 64}
            ).run()
    assert info.value.actual == hashlib.sha256(DATA).hexdigest()
    assert source.as_uri() in str(info.value)
    assert files_in(temp_dir) == []


async def test_file_url_size_mismatch(source: Path, temp_dir: Path) -> None:
    """A local file of another size raises SizeMismatch."""
    remote = Remote(url=source.parent.as_uri())
    async with DownloaderFactory() as factory:
        downloader = factory.get_downloader(
            remote, url=source.as_uri(), expected_size=len(DATA) - 1
        )
        with pytest.raises(SizeMismatch):
            await downloader.run()
    assert files_in(temp_dir) == []


async def test_missing_file_is_a_download_error(tmp_path: Path, temp_dir: Path) -> None:
    """A file:// url naming nothing raises DownloadError naming the url."""
    url = (tmp_path / "missing.bin").as_uri()
    async with DownloaderFactory() as factory:
        with pytest.raises(DownloadError, match=r"missing\.bin"):
            await factory.get_downloader(Remote(url=url), url=url).run()


async def test_unknown_scheme_is_refused(temp_dir: Path) -> None:
    """A url whose scheme has no downloader is refused up front."""
    async with DownloaderFactory() as factory:
        with pytest.raises(DownloadError, match="register a downloader"):
            factory.get_downloader(Remote(url="ftp://example/"), url="ftp://127.0.0.1/x")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
async def test_a_named_pipe_is_refused_without_hanging(tmp_path: Path, temp_dir: Path) -> None:
    """A file:// url naming a FIFO is refused at once, not waited on for a writer.

    It showed as run() blocked in open() in a worker thread that cancellation cannot
    interrupt: it returned only when the helper below opened the writing end, and then
    the pipe's (empty) contents were accepted. The helper says whether it had to: no
    wall-clock bound, so a loaded machine cannot fail the test.
    """
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    done = threading.Event()
    had_to_unblock = threading.Event()

    def open_the_writing_end_late() -> None:  # only so that a failing test ends
        if done.wait(5):
            return
        had_to_unblock.set()
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    unblocker = threading.Thread(target=open_the_writing_end_late, daemon=True)
    unblocker.start()
    url = fifo.as_uri()
    try:
        async with DownloaderFactory() as factory:
            with anyio.fail_after(15), pytest.raises(DownloadError, match="not a regular file"):
                await factory.get_downloader(Remote(url=url), url=url).run()
    finally:
        done.set()
        await anyio.to_thread.run_sync(unblocker.join)
    assert not had_to_unblock.is_set(), "run() waited for a writer to open the pipe"
    assert files_in(temp_dir) == []


async def test_a_file_larger_than_expected_stops_cleanly(tmp_path: Path, temp_dir: Path) -> None:
    """A file that outgrows expected_size fails without a copy, an open fd or a warning.

    It showed on Trio as a ResourceWarning that FileDownloader._chunks, the generator
    reading the file, was garbage collected before it was exhausted: the copy stopped
    at the size check and nothing closed it.
    """
    source = tmp_path / "big.bin"
    source.write_bytes(DATA)
    url = source.as_uri()
    fds_before = sorted(os.listdir("/proc/self/fd"))
    async with DownloaderFactory() as factory:
        downloader = factory.get_downloader(Remote(url=url), url=url, expected_size=1024 * 1024 + 1)
        with pytest.raises(SizeMismatch):
            await downloader.run()
    gc.collect()  # a generator left suspended is finalised (and warned about) here
    assert sorted(os.listdir("/proc/self/fd")) == fds_before
    assert files_in(temp_dir) == []
