"""HTTP validators and byte ranges: ETag matching and the ``Range`` header (RFC 9110)."""

from __future__ import annotations

import re
from typing import Final, Literal

__all__ = ["UNSATISFIABLE", "etag_matches", "parse_range"]

_RANGE: Final = re.compile(r"\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*")

#: What :func:`parse_range` returns for a well-formed range that selects no byte (a 416).
UNSATISFIABLE: Final = "unsatisfiable"


def etag_matches(header: str, etag: str, *, weak: bool) -> bool:
    """Whether ``If-None-Match`` (weak comparison) or ``If-Range`` (strong) lists ``etag``.

    Args:
        header: the header's value: ``*``, or entity tags separated by commas.
        etag: our entity tag, quoted (``"abc…"``).
        weak: compare weakly (a ``W/`` prefix is ignored), as ``If-None-Match`` does.
    """
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" and weak:
            return True
        if tag.startswith("W/"):
            if not weak:
                continue
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def parse_range(header: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """The one byte range ``[start, end)`` a ``Range`` header asks for.

    Returns:
        The range, never empty; :data:`UNSATISFIABLE` for a single range that selects
        no byte (it starts at or after the end of the file, or is a suffix of zero
        bytes); None for "send the whole file": the header is malformed, not about
        bytes, or asks for several ranges (which a server may answer in full, and this
        one does, rather than with a multipart body).
    """
    match = _RANGE.fullmatch(header)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0:
            return UNSATISFIABLE
        return max(0, size - suffix), size
    start = int(first)
    end = size if not last else int(last) + 1
    if last and end <= start:
        return None  # "bytes=5-2" is invalid: ignored, so the whole file
    if start >= size:
        return UNSATISFIABLE
    return start, min(end, size)
