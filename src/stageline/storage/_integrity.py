"""Measuring a file's size and sha256 in one read, and refusing bytes that are not what they claim.

Everything here is blocking and runs in the worker thread of one ``store()`` call, which
keeps one :class:`FileReader` (and so one read buffer) for all of its files: a store of
10 000 small files allocates one buffer, not 10 000.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Final, NamedTuple

from .._exceptions import ArtifactIntegrityError

__all__ = ["CAN_MEASURE_OWN", "FileReader", "Measured", "open_own", "verify"]

_CHUNK = 1024 * 1024
# For measure_own(): a symlink is refused by the open itself (ELOOP) where the platform
# can; os.readv fills the reused buffer without a Python file object (which costs an
# fstat of its own) where it exists.
NO_FOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_OWN_FLAGS: Final = (
    os.O_RDONLY | NO_FOLLOW | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)
_READV: Final = getattr(os, "readv", None)
#: Whether :meth:`FileReader.measure_own` and :func:`open_own` do what they say here (a
#: platform without O_NOFOLLOW or readv takes the long way).
CAN_MEASURE_OWN: Final = NO_FOLLOW != 0 and _READV is not None


def open_own(path: Path) -> int:
    """Open a file a download wrote for reading, refusing a symlink (``errno.ELOOP``).

    Raises:
        OSError: the file cannot be opened.
    """
    return os.open(path, _OWN_FLAGS)


class Measured(NamedTuple):
    """What a file's bytes are: their count and their sha256."""

    size: int
    sha256: str

    def matches(self, *, sha256: str, size: int | None) -> bool:
        """Whether these are the bytes of ``sha256`` and (when given) ``size``."""
        return self.sha256 == sha256 and (size is None or self.size == size)


class FileReader:
    """Reads files in chunks through one reusable buffer, hashing what it reads."""

    def __init__(self) -> None:
        self._buffer: bytearray | None = None

    def _view(self) -> memoryview:
        # Allocated on first use: store_bytes() makes a reader it rarely needs.
        if self._buffer is None:
            self._buffer = bytearray(_CHUNK)
        return memoryview(self._buffer)

    def measure(self, path: Path, *, sync: bool = False) -> Measured:
        """Read ``path`` once: its size and sha256; with ``sync``, also fsync it.

        Syncing here, through the descriptor the read opened, spares opening the file
        a second time (a file about to be renamed into storage must be synced first).

        Raises:
            OSError: the file cannot be opened, read or synced.
        """
        digest = hashlib.sha256()
        size = 0
        view = self._view()
        with open(path, "rb", buffering=0) as source:
            while count := source.readinto(view):
                digest.update(view[:count])
                size += count
            if sync:
                os.fsync(source.fileno())
        return Measured(size, digest.hexdigest())

    def measure_own(self, path: Path) -> Measured:
        """Like ``measure(path, sync=True)``, in fewer system calls, for a file a download wrote.

        A storage call makes these calls for every file, in a worker thread, and each
        one hands the GIL to the event loop thread and back.

        The path is opened without following a symlink (``OSError`` with ``errno.ELOOP``
        for one, where the platform has ``O_NOFOLLOW``), and a read shorter than the
        buffer is taken as the end of the file, as it is for a regular file on a local
        filesystem. Should a read end short before the end, the digest of what was read
        differs from the expected one: the caller then measures the file again with
        :meth:`measure` before refusing it, and never wrongly accepts it.

        Raises:
            OSError: the file cannot be opened, read or synced.
        """
        if not CAN_MEASURE_OWN:  # pragma: no cover - every POSIX platform has readv
            return self.measure(path, sync=True)
        fd = open_own(path)
        try:
            measured = self.measure_open(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        return measured

    def measure_open(self, fd: int) -> Measured:
        """The size and sha256 of the file open at ``fd`` (from its current offset), read
        as :meth:`measure_own` reads: a read shorter than the buffer is the end.

        Raises:
            OSError: the read failed.
        """
        assert _READV is not None
        digest = hashlib.sha256()
        size = 0
        view = self._view()
        while True:
            count = _READV(fd, [view])
            if count:
                digest.update(view[:count])
                size += count
            if count < len(view):
                break
        return Measured(size, digest.hexdigest())

    def copy(self, source: Path, destination: Path) -> Measured:
        """Copy ``source`` to a new ``destination``, fsync it, and measure the bytes written.

        The digest is of the very chunks written, so a check of the result vouches for the
        copy, whatever happens to ``source`` meanwhile.

        Raises:
            OSError: reading, writing or syncing failed (``destination`` may be left partial).
        """
        digest = hashlib.sha256()
        size = 0
        view = self._view()
        with open(source, "rb", buffering=0) as src, open(destination, "xb", buffering=0) as dst:
            while count := src.readinto(view):
                chunk = view[:count]
                digest.update(chunk)
                written = 0
                while written < count:
                    written += dst.write(chunk[written:]) or 0
                size += count
            os.fsync(dst.fileno())
        return Measured(size, digest.hexdigest())


def verify(path: Path, measured: Measured, *, sha256: str, size: int | None) -> None:
    """Refuse ``path`` unless its bytes have ``sha256`` and (when given) ``size``.

    Raises:
        ArtifactIntegrityError: they differ; the message names the path and both values.
    """
    if measured.matches(sha256=sha256, size=size):
        return
    differences = []
    if measured.sha256 != sha256:
        differences.append(f"its sha256 is {measured.sha256}, not {sha256}")
    if size is not None and measured.size != size:
        differences.append(f"its size is {measured.size} bytes, not the {size} declared")
    raise ArtifactIntegrityError(
        f"refused to store {path} as artifact {sha256}: {' and '.join(differences)}. Nothing "
        "was stored. The file changed after it was downloaded or written, or the artifact "
        "declares the wrong digest or size: download the file again, or correct the artifact",
        path=path,
        expected_sha256=sha256,
        actual_sha256=measured.sha256,
        expected_size=size,
        actual_size=measured.size,
    )
