"""Hashing a body into a temporary file, and checking it against what was expected.

Every downloader writes through a :class:`DigestingWriter`: it creates the temporary file
in :func:`~stageline.storage.current_temp_dir`, feeds every allowed digest while writing,
and at the end compares size and digests with the expectations. Large bodies are hashed
and written in a worker thread, batch by batch, while the event loop keeps receiving the
next batch (``hashlib`` releases the GIL on large updates, so this really runs on a second
core); small bodies are handled inline, where a thread hop would cost more than it saves.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Protocol, Self

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from .._exceptions import (
    DigestMismatch,
    ForbiddenDigestError,
    InvalidValueError,
    MalformedDigestError,
    SizeMismatch,
    StorageError,
    redact_url,
)
from .._tempdir import temp_dir_path
from ..models import DIGEST_FIELDS

__all__ = [
    "DEFAULT_ALLOWED_DIGESTS",
    "DigestingWriter",
    "check_allowed_digests",
    "check_expected_digests",
]

#: The digests computed for every download, and the only kinds accepted as expectations.
#: md5 and sha1 are left out on purpose: they are broken, so a match proves nothing.
DEFAULT_ALLOWED_DIGESTS: Final[frozenset[str]] = frozenset({"sha224", "sha256", "sha384", "sha512"})

#: Bodies up to this size are hashed and written on the event loop in one go; larger ones
#: go to a worker thread in batches of this size (see ``docs/benchmarks.md``).
DEFAULT_BATCH_SIZE: Final[int] = 1024 * 1024

# Relative CPU cost per byte of each digest (x86-64 with SHA extensions) and of writing
# to the page cache; used only to share the work of large bodies between two threads.
_COST: Final[dict[str, float]] = {
    "md5": 2.4, "sha1": 0.8, "sha224": 1.0, "sha256": 1.0, "sha384": 2.0, "sha512": 2.0,
}  # fmt: skip
_WRITE_COST: Final[float] = 2.0
_LANES: Final[int] = 2


class Hasher(Protocol):
    """What ``hashlib.new`` returns, as far as the writer uses it."""

    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


# The named constructors skip hashlib.new's lookup by name, which costs more than the
# hashing of a small body's bookkeeping is worth.
_CONSTRUCTORS: Final[dict[str, Callable[[], Hasher]]] = {
    "md5": hashlib.md5, "sha1": hashlib.sha1, "sha224": hashlib.sha224,
    "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512,
}  # fmt: skip


def _new_hasher(name: str) -> Hasher:
    constructor = _CONSTRUCTORS.get(name)
    return constructor() if constructor is not None else hashlib.new(name)


# The temporary file is created with a random name and O_EXCL (what tempfile.mkstemp
# does, without its per-call name generator and Python file object) and written with
# os.write. No fsync: durability is the storage's business when it moves the file into
# place; a temporary file that a crash loses is simply downloaded again.
_OPEN_FLAGS: Final[int] = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)
_NAME_TRIES: Final[int] = 100


@functools.lru_cache(maxsize=64)
def _sorted_algorithms(allowed: frozenset[str], expected: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(allowed | expected))


def _split_into_lanes(
    names: Sequence[str], hashers: Sequence[Hasher]
) -> list[tuple[list[Hasher], bool]]:
    """Share hashing and writing between worker threads, heaviest digests first.

    Two lanes, because the event loop itself needs a core to receive, and because on the
    two-core machines many syncs run on the gain from a third thread is nil (see
    ``docs/benchmarks.md``). The first lane also writes the file.
    """
    lanes: list[tuple[list[Hasher], bool]] = [([], i == 0) for i in range(_LANES)]
    loads = [_WRITE_COST] + [0.0] * (_LANES - 1)
    for name, hasher in sorted(
        zip(names, hashers, strict=True), key=lambda pair: -_COST.get(pair[0], 1.0)
    ):
        lane = loads.index(min(loads))
        lanes[lane][0].append(hasher)
        loads[lane] += _COST.get(name, 1.0)
    return lanes


# How many filled batches may wait for the worker thread before receiving pauses; bounds
# the memory one download holds to about (this + 2) batches.
_QUEUED_BATCHES: Final[int] = 2


_HEX_DIGITS: Final = frozenset("0123456789abcdef")
_HEX_LENGTHS: Final[dict[str, int]] = {
    name: 2 * hashlib.new(name).digest_size for name in _CONSTRUCTORS
}


def check_allowed_digests(allowed_digests: Iterable[str]) -> frozenset[str]:
    """Validate a set of allowed digest kinds and return it frozen.

    Raises:
        ValueError: when a kind is unknown, or when ``sha256`` (which identifies artifacts)
            is missing.
    """
    allowed = frozenset(allowed_digests)
    unknown = allowed - set(DIGEST_FIELDS)
    if unknown:
        raise InvalidValueError(
            f"allowed_digests: unknown digest kinds {sorted(unknown)}; "
            f"choose among {list(DIGEST_FIELDS)}"
        )
    if "sha256" not in allowed:
        raise InvalidValueError(
            f"allowed_digests must contain 'sha256' (artifacts are identified by it), "
            f"got {sorted(allowed)}"
        )
    return allowed


def check_expected_digests(
    url: str, expected_digests: Mapping[str, str] | None, allowed_digests: frozenset[str]
) -> dict[str, str]:
    """Normalise the expected digests of ``url`` and refuse kinds that are not allowed.

    Returns:
        The expectations as lower-case hex, without surrounding whitespace.

    Raises:
        ForbiddenDigestError: when an expected digest is of a kind that is not allowed
            (md5 and sha1 by default) or not known at all.
        MalformedDigestError: (also a ``ValueError``) when a value is not a hex digest of
            its kind's length (no bytes could match it, so every try would download the
            whole file for nothing).
    """
    if not expected_digests:
        return {}
    shown = redact_url(url)
    refused = sorted(set(expected_digests) - allowed_digests)
    if refused:
        raise ForbiddenDigestError(
            f"refusing to download {shown}: it is expected by digest kinds {refused}, which "
            f"are not allowed (allowed: {sorted(allowed_digests)}). Give a digest of an "
            "allowed kind, or allow the kind on the DownloaderFactory if you must",
            url=url,
        )
    normalised = {}
    for name, value in expected_digests.items():
        digest = value.strip().lower() if isinstance(value, str) else None
        length = _HEX_LENGTHS.get(name) or 2 * hashlib.new(name).digest_size
        if digest is None or len(digest) != length or not _HEX_DIGITS.issuperset(digest):
            raise MalformedDigestError(
                f"cannot download {shown}: expected_digests[{name!r}] must be {length} hex "
                f"digits, got {value!r}; check where the metadata's digest was read from"
            )
        normalised[name] = digest
    return normalised


class DigestingWriter:
    """Write a body to a new temporary file while computing every allowed digest.

    Use one writer per try, as an async context manager: the temporary file is removed
    on exit unless :meth:`finish` succeeded, so a failed, retried or cancelled try never
    leaves a file behind. Plugin downloaders can use it to get the same validation as the
    built-in ones::

        async with DigestingWriter(url=url, expected_digests=..., expected_size=...,
                                   allowed_digests=...) as writer:
            await writer.consume(chunks)
            path, attributes = writer.finish()

    Args:
        url: the url being downloaded, for error messages (shown with credentials masked).
        expected_digests: digests the bytes must have, already checked with
            :func:`check_expected_digests`.
        expected_size: the size the body must have, or None.
        allowed_digests: the digest kinds to compute.
        directory: where the temporary file goes; defaults to
            :func:`~stageline.storage.current_temp_dir`.
        batch_size: bodies larger than this are hashed in a worker thread, in batches of
            about this many bytes.
    """

    def __init__(
        self,
        *,
        url: str,
        expected_digests: Mapping[str, str],
        expected_size: int | None,
        allowed_digests: Iterable[str],
        directory: Path | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.url = redact_url(url)  # only ever shown, in error messages
        self._expected_digests = dict(expected_digests)
        self._expected_size = expected_size
        self._algorithms = _sorted_algorithms(
            frozenset(allowed_digests), frozenset(self._expected_digests)
        )
        self._hashers = [_new_hasher(name) for name in self._algorithms]
        self._directory = directory
        self._batch_size = batch_size
        self._pending: list[bytes] = []
        self._pending_size = 0
        #: Bytes received so far.
        self.size = 0
        self._path: str | None = None
        self._fd: int | None = None
        self._finished = False
        self._worker_error: Exception | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._finished:
            self.discard()

    @property
    def path(self) -> Path | None:
        """The temporary file, once created."""
        return None if self._path is None else Path(self._path)

    def discard(self) -> None:
        """Close and remove the temporary file, if any.

        Synchronous on purpose, so that it also runs while the task is being cancelled.
        """
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)
            self._path = None

    async def consume(self, chunks: AsyncIterable[bytes]) -> None:
        """Receive the whole body from ``chunks``, hashing and writing it.

        The first batch is gathered on the event loop; if the body turns out larger than
        one batch, the rest is hashed and written by worker threads while the loop keeps
        receiving, so that receiving, hashing and writing overlap.

        Raises:
            SizeMismatch: as soon as the body grows past the expected size.
            StorageError: when the temporary file cannot be written.
            Exception: whatever iterating ``chunks`` raises.

        When receiving and a worker both fail, the first failure is raised, as itself
        (never an ExceptionGroup); the temporary file is left for the context manager's
        exit to remove.
        """
        iterator = aiter(chunks)
        async for chunk in iterator:
            if self._add(chunk):
                break
        else:
            return  # the whole body fits in one batch: finish() writes it inline
        host_error: Exception | None = None
        async with anyio.create_task_group() as task_group:
            sends = []
            for hashers, writes in _split_into_lanes(self._algorithms, self._hashers):
                send, receive = anyio.create_memory_object_stream[list[bytes]](_QUEUED_BATCHES)
                sends.append(send)
                task_group.start_soon(self._lane, receive, hashers, writes, task_group.cancel_scope)
            # Errors are caught and re-raised after the task group, so that callers see
            # the original exception rather than an ExceptionGroup.
            try:
                async with contextlib.AsyncExitStack() as stack:
                    for send in sends:
                        await stack.enter_async_context(send)
                    batch = self._take_pending()
                    for send in sends:
                        await send.send(batch)
                    async for chunk in iterator:
                        if self._add(chunk):
                            batch = self._take_pending()
                            for send in sends:
                                await send.send(batch)
                    if self._pending:
                        batch = self._take_pending()
                        for send in sends:
                            await send.send(batch)
            except Exception as exc:
                # The first failure is the one raised: a worker that fails after this
                # (on the batch it was writing when the body broke) is a consequence.
                if self._worker_error is None:
                    host_error = exc
                task_group.cancel_scope.cancel()
        if host_error is not None:
            raise host_error
        if self._worker_error is not None:
            raise self._worker_error

    def finish(self) -> tuple[Path, dict[str, int | str]]:
        """Write what is left, close and validate the file.

        Returns:
            The file's path and a dict with its ``size`` and every computed digest.

        Raises:
            SizeMismatch: when the body has another size than expected.
            DigestMismatch: when a digest differs from the expected one.
            StorageError: when the temporary file cannot be written.
        """
        # A small body is written here in one go: an open-write-close on the event loop
        # costs less than a round trip to a worker thread.
        self._consume_batch(self._take_pending())
        if self._fd is None:
            self._open_file()  # an empty body still makes an (empty) file
        fd, self._fd = self._fd, None
        assert fd is not None
        assert self._path is not None
        try:
            os.close(fd)
        except OSError as exc:
            raise self._storage_error(exc) from exc
        # Each hexdigest copies the hash's state: taken once, for the check and the result.
        digests = {
            name: hasher.hexdigest()
            for name, hasher in zip(self._algorithms, self._hashers, strict=True)
        }
        self._check(digests)
        self._finished = True
        attributes: dict[str, int | str] = {"size": self.size}
        attributes.update(digests)
        return Path(self._path), attributes

    def _add(self, chunk: bytes) -> bool:
        """Queue ``chunk``; True when a full batch is pending."""
        self.size += len(chunk)
        if self._expected_size is not None and self.size > self._expected_size:
            raise SizeMismatch(
                f"{self.url} is larger than expected: expected {self._expected_size} bytes, "
                f"received at least {self.size}; the upstream file changed or the metadata "
                "that announced it is stale",
                url=self.url,
                expected=self._expected_size,
                actual=self.size,
            )
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        return self._pending_size >= self._batch_size

    def _check(self, digests: Mapping[str, str]) -> None:
        if self._expected_size is not None and self.size != self._expected_size:
            raise SizeMismatch(
                f"{self.url} has the wrong size: expected {self._expected_size} bytes, "
                f"received {self.size}; the upstream file changed or the metadata that "
                "announced it is stale",
                url=self.url,
                expected=self._expected_size,
                actual=self.size,
            )
        for name in self._algorithms:
            expected = self._expected_digests.get(name)
            if expected is None:
                continue
            actual = digests[name]
            if actual != expected:
                raise DigestMismatch(
                    f"{self.url} has the wrong {name}: expected {expected}, got {actual}; "
                    "the upstream file changed or the metadata that announced it is stale",
                    url=self.url,
                    algorithm=name,
                    expected=expected,
                    actual=actual,
                )

    def _take_pending(self) -> list[bytes]:
        batch, self._pending, self._pending_size = self._pending, [], 0
        return batch

    async def _lane(
        self,
        receive: MemoryObjectReceiveStream[list[bytes]],
        hashers: Sequence[Hasher],
        writes: bool,
        scope: anyio.CancelScope,
    ) -> None:
        async with receive:
            async for batch in receive:
                try:
                    await anyio.to_thread.run_sync(self._process, batch, hashers, writes)
                except Exception as exc:  # kept for consume() to raise unwrapped
                    if self._worker_error is None:
                        self._worker_error = exc
                    scope.cancel()
                    return

    def _consume_batch(self, batch: list[bytes]) -> None:
        """Hash and write one batch on the calling thread."""
        self._process(batch, self._hashers, True)

    def _process(self, batch: list[bytes], hashers: Sequence[Hasher], writes: bool) -> None:
        """Feed ``batch`` to ``hashers`` and maybe the file (blocking; any thread)."""
        if not batch:
            return
        # One large update per digest rather than one per network chunk: hashlib
        # releases the GIL inside each call, and every re-acquisition competes with the
        # event loop thread, so fewer, longer calls mean fewer hand-overs. The join costs
        # one memcpy per batch.
        data = batch[0] if len(batch) == 1 else b"".join(batch)
        for hasher in hashers:
            hasher.update(data)
        if not writes:
            return
        if self._fd is None:
            self._open_file()
        assert self._fd is not None
        try:
            written = os.write(self._fd, data)
            if written < len(data):  # a short write: rare for a regular file, but allowed
                view = memoryview(data)
                while written < len(data):
                    written += os.write(self._fd, view[written:])
        except OSError as exc:
            raise self._storage_error(exc) from exc

    def _storage_error(self, exc: OSError) -> StorageError:
        return StorageError(
            f"cannot write the download of {self.url} to {self._path}: {exc}; "
            "check the free space and permissions of the temporary directory"
        )

    def _open_file(self) -> None:
        explicit = self._directory is not None
        directory = self._directory if self._directory is not None else temp_dir_path()
        for _ in range(_NAME_TRIES):
            path = os.path.join(directory, f"download-{os.urandom(8).hex()}")
            try:
                try:
                    self._fd = os.open(path, _OPEN_FLAGS, 0o600)
                except FileNotFoundError:
                    if explicit:
                        raise
                    # The temporary area is made on first use (or again, if something
                    # removed it), not checked before every download.
                    self._make_directory(directory)
                    self._fd = os.open(path, _OPEN_FLAGS, 0o600)
            except FileExistsError:
                continue
            except OSError as exc:
                raise StorageError(
                    f"cannot create a temporary file in {directory} for {self.url}: {exc}; "
                    "check the free space and permissions of the temporary directory"
                ) from exc
            self._path = path
            return
        raise StorageError(  # pragma: no cover - 64 random bits collided 100 times
            f"cannot create a temporary file in {directory} for {self.url}: no free name "
            f"after {_NAME_TRIES} tries"
        )

    def _make_directory(self, directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. a file in the way, or no permission
            raise StorageError(
                f"cannot create the temporary directory {directory} for {self.url}: {exc}; "
                "check the free space and permissions of the temporary directory"
            ) from exc
