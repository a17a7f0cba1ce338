"""An opened file of a repository version: its size, sha256 and bytes, whole or a range."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import anyio

from .._exceptions import ContentRangeError, StorageError
from ..models import Artifact, ContentArtifact

__all__ = ["DEFAULT_CHUNK_SIZE", "ContentStream", "OpenedContent", "TemporaryCopy"]

#: Bytes per chunk that :meth:`OpenedContent.chunks` yields by default.
DEFAULT_CHUNK_SIZE: Final = 64 * 1024


class TemporaryCopy:
    """A fetched file that is never kept (a streamed remote's), shared by its readers.

    Every opener that shares the copy holds one reference; the file is removed when the
    last one is released. Removal is synchronous, so it also happens during a
    cancellation.
    """

    __slots__ = ("holders", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.holders = 1

    def release(self) -> None:
        """Drop one reference; the last one removes the file."""
        self.holders -= 1
        if self.holders == 0:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


class ContentStream:
    """The bytes ``[start, end)`` of a file, in chunks: ``async for chunk in stream``.

    The file is opened on the first chunk and closed at the end of the range, by
    :meth:`aclose`, or when the :class:`OpenedContent` it came from closes. Use it as an
    async iterator, or as an async context manager to close it early.
    """

    def __init__(self, path: Path, start: int, end: int, chunk_size: int, what: str) -> None:
        self._path = path
        self._position = start
        self._end = end
        self._chunk_size = chunk_size
        self._what = what
        self._file: anyio.AsyncFile[bytes] | None = None
        self._closed = False
        self._on_close: list[ContentStream] | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        if self._closed or self._position >= self._end:
            await self.aclose()
            raise StopAsyncIteration
        try:
            if self._file is None:
                self._file = await anyio.open_file(self._path, "rb")
                await self._file.seek(self._position)
            data = await self._file.read(min(self._chunk_size, self._end - self._position))
        except OSError as exc:
            await self.aclose()
            raise StorageError(f"cannot read {self._what} from {self._path}: {exc}") from exc
        if not data:
            await self.aclose()
            raise StorageError(
                f"{self._what} at {self._path} ended at byte {self._position}, before its "
                f"size of {self._end} bytes; the file was changed outside stageline"
            )
        self._position += len(data)
        return data

    async def aclose(self) -> None:
        """Close the file (if open); the stream then ends. Idempotent."""
        self._closed = True
        if self._on_close is not None:
            with contextlib.suppress(ValueError):
                self._on_close.remove(self)
            self._on_close = None
        file, self._file = self._file, None
        if file is not None:
            with anyio.CancelScope(shield=True):
                await file.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class OpenedContent:
    """A file of a repository version, ready to read; get one from ``ContentFetcher.open``.

    The bytes have been validated before the file is opened: a deferred file is fetched
    whole and checked against its size and every digest before a single byte is offered,
    so the size and sha256 are always known, and any byte range can be read.

    Attributes:
        content_artifact: the content artifact opened, as it was looked up.
        artifact: the file's artifact: the saved one when the file is in storage (``pk``
            set), else the unsaved artifact of the copy fetched for a streamed remote.
        relative_path: the file's path in the version.
        size: the file's size in bytes.
        sha256: the file's sha256 (an ETag, say).
        fetched_from: the url the file was downloaded from to serve this open (by this
            open or by a concurrent one whose download it shared; credentials masked), or
            None when it was read from the storage without a download.
        saved: True when the file is in the artifact storage (and stays there); False for
            a streamed remote's copy, removed when the last of its readers closes.
    """

    def __init__(
        self,
        content_artifact: ContentArtifact,
        artifact: Artifact,
        *,
        path: Path,
        size: int,
        sha256: str,
        fetched_from: str | None,
        saved: bool,
    ) -> None:
        self.content_artifact = content_artifact
        self.artifact = artifact
        self.relative_path = content_artifact.relative_path
        self.size = size
        self.sha256 = sha256
        self.fetched_from = fetched_from
        self.saved = saved
        self._path = path
        self._streams: list[ContentStream] = []
        self._closed = False

    def __repr__(self) -> str:
        where = "storage" if self.fetched_from is None else self.fetched_from
        return (
            f"<OpenedContent {self.relative_path!r} {self.size} bytes sha256={self.sha256} "
            f"from {where}>"
        )

    def chunks(
        self, start: int = 0, end: int | None = None, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> ContentStream:
        """The bytes from ``start`` up to (not including) ``end``, in chunks.

        Each call reads the file on its own, so several ranges can be read at once. An
        HTTP ``Range: bytes=a-b`` is ``chunks(a, b + 1)``.

        Args:
            start: the first byte, 0 <= start <= end.
            end: the byte after the last one, end <= size; None for the end of the file.
            chunk_size: at most this many bytes per chunk (>= 1).

        Returns:
            An async iterator of non-empty ``bytes`` (none for an empty range).

        Raises:
            ContentRangeError: (a ``ValueError``) the range is not within the file, or
                ``chunk_size`` < 1.
            StorageError: (while iterating) the file cannot be read, or is shorter than
                its size; or (at once) this opened content was closed.
        """
        end = self.size if end is None else end
        for name, value in (("start", start), ("end", end), ("chunk_size", chunk_size)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ContentRangeError(
                    f"{name} must be an int, got {value!r}", start=-1, end=-1, size=self.size
                )
        if not 0 <= start <= end <= self.size or chunk_size < 1:
            raise ContentRangeError(
                f"cannot read bytes [{start}, {end}) in chunks of {chunk_size} of "
                f"{self.relative_path!r}: it has {self.size} bytes; ask for 0 <= start <= "
                f"end <= {self.size}, chunk_size >= 1",
                start=start,
                end=end,
                size=self.size,
            )
        if self._closed:
            raise StorageError(
                f"{self.relative_path!r} was closed; read it inside the `async with` "
                "block that opened it"
            )
        stream = ContentStream(
            self._path, start, end, chunk_size, f"{self.relative_path!r} ({self.sha256})"
        )
        stream._on_close = self._streams
        self._streams.append(stream)
        return stream

    async def read(self, start: int = 0, end: int | None = None) -> bytes:
        """The bytes from ``start`` up to (not including) ``end`` at once (small files).

        Raises:
            ContentRangeError: the range is not within the file.
            StorageError: the file cannot be read.
        """
        async with self.chunks(start, end) as stream:
            return b"".join([chunk async for chunk in stream])

    async def aclose(self) -> None:
        """Close every stream still reading the file. Idempotent."""
        self._closed = True
        while self._streams:
            await self._streams[-1].aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
