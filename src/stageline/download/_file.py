"""The ``file://`` downloader: a local file, read off the event loop, validated."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import urllib.parse
import urllib.request
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import IO

import anyio

from .._exceptions import DownloadError, redact_url
from ._base import DownloadResult, _RemoteDownloader
from ._validation import DigestingWriter

__all__ = ["FileDownloader"]

_READ_SIZE = 1024 * 1024


def file_url_to_path(url: str) -> Path:
    """The local path a ``file://`` url names.

    Raises:
        DownloadError: for a url with a host other than ``localhost``.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise DownloadError(
            f"cannot read {redact_url(url)}: file:// urls must name a local path "
            "(file:///path or file://localhost/path)",
            url=url,
        )
    return Path(urllib.request.url2pathname(parts.path))


def _open_regular_file(path: Path) -> IO[bytes]:
    """Open ``path`` for reading, refusing anything but a regular file.

    Opened non-blocking, so that a named pipe without a writer cannot block the worker
    thread (which a cancellation cannot interrupt), and checked on the open descriptor,
    so that a device or pipe is never read (possibly forever).
    """
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, os.O_RDONLY | nonblocking | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if nonblocking:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class FileDownloader(_RemoteDownloader):
    """Copies a ``file://`` url to a temporary file with the same validation as HTTP.

    The file is read in a worker thread, one batch at a time, so a large file never
    blocks the event loop and a cancelled copy stops at the next batch. A local read is
    not retried: reading the same file again gives the same bytes. It holds one of the
    remote's concurrency slots while copying. Subclass it like :class:`HttpDownloader`.

    Args:
        url: the ``file://`` url.
        remote: whose concurrency limit applies.
        factory: the factory whose settings (allowed digests) apply.
        expected_digests: digests the file must have, by kind.
        expected_size: the size the file must have, in bytes.

    Raises:
        ForbiddenDigestError: when an expected digest is of a kind not allowed.
    """

    async def run(self) -> DownloadResult:
        """Copy, validate and return the result.

        Returns:
            The temporary copy, its size and digests (``headers`` is empty).

        Raises:
            DownloadError: the url names no readable local file.
            DigestMismatch: the file's digest differs from the expected one.
            SizeMismatch: the file's size differs from the expected one.
            StorageError: the temporary file could not be written.
        """
        path = file_url_to_path(self.url)
        async with self.session.limiter:
            try:
                source = await anyio.to_thread.run_sync(_open_regular_file, path)
            except OSError as exc:
                raise DownloadError(
                    f"cannot read {self.redacted_url}: {exc.strerror or exc}; check that {path} "
                    "exists and is readable",
                    url=self.url,
                ) from exc
            try:
                # Closed explicitly: a copy stopped early (a size mismatch, a cancellation)
                # would otherwise leave the generator suspended, and Trio warns when it
                # is garbage collected.
                async with (
                    contextlib.aclosing(self._chunks(source, path)) as chunks,
                    DigestingWriter(
                        url=self.url,
                        expected_digests=self.expected_digests,
                        expected_size=self.expected_size,
                        allowed_digests=self.factory.allowed_digests,
                        batch_size=self.factory.batch_size,
                    ) as writer,
                ):
                    await writer.consume(chunks)
                    temporary, attributes = writer.finish()
            finally:
                source.close()
        return DownloadResult(url=self.url, path=temporary, artifact_attributes=attributes)

    async def _chunks(self, source: IO[bytes], path: Path) -> AsyncGenerator[bytes, None]:
        while True:
            try:
                chunk = await anyio.to_thread.run_sync(source.read, _READ_SIZE)
            except OSError as exc:
                raise DownloadError(
                    f"cannot read {self.redacted_url}: {exc.strerror or exc} (reading {path})",
                    url=self.url,
                ) from exc
            if not chunk:
                return
            yield chunk
