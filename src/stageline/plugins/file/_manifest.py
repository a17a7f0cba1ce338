"""Reading a manifest: ``relative_path,sha256,size`` lines, parsed as they arrive.

A :class:`ManifestReader` is fed the manifest's bytes in chunks of any size and returns
the entries of the lines each chunk completes, so a first stage reads a manifest of any
length with memory bounded by one chunk and one line.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from ..._exceptions import UnsafePathError
from ...models import check_relative_path
from ._content import MANIFEST_NAME
from ._errors import ManifestError

__all__ = ["MAX_LINE_BYTES", "ManifestEntry", "ManifestReader"]

#: The longest manifest line accepted, in bytes: a longer one is a ManifestError, so
#: that a file without line breaks is never held whole in memory.
MAX_LINE_BYTES: Final = 64 * 1024

_SHA256: Final = re.compile(r"[0-9a-fA-F]{64}")
_SIZE: Final = re.compile(r"[0-9]{1,19}")
_SHOWN_CHARS: Final = 120


class ManifestEntry(NamedTuple):
    """One line of a manifest.

    Attributes:
        relative_path: the file's path relative to the manifest's folder (checked safe).
        sha256: its sha256, lowercase hex.
        size: its size in bytes.
        line_number: the manifest line it came from, counted from 1.
    """

    relative_path: str
    sha256: str
    size: int
    line_number: int

    @property
    def is_manifest(self) -> bool:
        """True when the entry is a sub-repository's manifest (named ``PULP_MANIFEST``)."""
        return self.relative_path.rpartition("/")[2] == MANIFEST_NAME


def _shown(line: str) -> str:
    return repr(line if len(line) <= _SHOWN_CHARS else line[:_SHOWN_CHARS] + "…")


class ManifestReader:
    """Parses a manifest fed in chunks: ``feed(chunk)`` per chunk, then ``end()``.

    A line is ``relative_path,sha256,size``: the path may itself hold commas (the last
    two commas split the line), the sha256 is 64 hex digits (upper case is lowered), the
    size a decimal count of bytes. Blank lines and lines starting with ``#`` (after
    leading white space) are skipped; a ``\\r`` before the line break is allowed.

    Args:
        url: the manifest's url, for the messages.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.line_number = 0
        self._rest = b""

    def feed(self, chunk: bytes) -> list[ManifestEntry]:
        """The entries of the lines ``chunk`` completes, in order.

        Raises:
            ManifestError: a completed line is malformed or names an unsafe path, or an
                unfinished line is longer than :data:`MAX_LINE_BYTES`.
        """
        data = self._rest + chunk if self._rest else chunk
        lines = data.split(b"\n")
        self._rest = lines.pop()
        if len(self._rest) > MAX_LINE_BYTES:
            raise ManifestError(
                self.url,
                self.line_number + len(lines) + 1,
                f"the line is longer than {MAX_LINE_BYTES} bytes (is this a manifest?)",
            )
        entries = []
        for line in lines:
            entry = self._parse(line)
            if entry is not None:
                entries.append(entry)
        return entries

    def end(self) -> list[ManifestEntry]:
        """The entry of a last line without a line break, if any.

        Raises:
            ManifestError: that line is malformed.
        """
        rest, self._rest = self._rest, b""
        entry = self._parse(rest) if rest else None
        return [entry] if entry is not None else []

    def _parse(self, raw: bytes) -> ManifestEntry | None:
        self.line_number += 1
        number = self.line_number
        if len(raw) > MAX_LINE_BYTES:
            raise ManifestError(self.url, number, f"the line is longer than {MAX_LINE_BYTES} bytes")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(self.url, number, f"the line is not UTF-8 ({exc.reason})") from exc
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            return None
        line = line.removesuffix("\r")
        fields = line.rsplit(",", 2)
        if len(fields) != 3:
            raise ManifestError(
                self.url, number, f"{_shown(line)} has {len(fields)} comma-separated fields, not 3"
            )
        path, sha256, size = fields
        if _SHA256.fullmatch(sha256) is None:
            raise ManifestError(
                self.url, number, f"{_shown(sha256)} is not a sha256 (64 hex digits)"
            )
        if _SIZE.fullmatch(size) is None or int(size) >= 2**63:
            raise ManifestError(
                self.url, number, f"{_shown(size)} is not a size (a whole number of bytes)"
            )
        try:
            check_relative_path(path)
        except UnsafePathError as exc:
            raise ManifestError(self.url, number, f"refused: {exc}") from exc
        if path == MANIFEST_NAME:
            raise ManifestError(
                self.url,
                number,
                f"the manifest lists a {MANIFEST_NAME} in its own folder; a sub-repository's "
                "manifest must be in a sub-folder",
            )
        return ManifestEntry(path, sha256.lower(), int(size), number)
