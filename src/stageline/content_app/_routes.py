"""What a request path asks for: the repository list, a repository, a folder or a file.

The path is read from the request's raw, still percent-encoded bytes, split on ``/``
first and decoded segment by segment, so that an encoded slash (``%2f``) never becomes a
separator. A segment that decodes to anything a saved relative path could not hold (a
``/``, a backslash, a control character such as NUL, ``.``, ``..``, or invalid UTF-8),
and an empty segment anywhere but at the end, make the whole path "not found": nothing a
client sends is normalised into another path, and nothing is ever joined to a
filesystem path (files are looked up in the database, and read by their sha256).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

import attrs

__all__ = ["LATEST", "Route", "parse_path", "quote_path"]

#: The version segment that names a repository's latest version.
LATEST: Final = "latest"

_UNSAFE_SEGMENT: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\\/]")
_NUMBER: Final = re.compile(r"0|[1-9][0-9]{0,9}")


@attrs.frozen
class Route:
    """A parsed request path.

    Attributes:
        repository: the repository's name; None for the list of repositories.
        version: the version segment as given (``"latest"`` or a number); None for the
            repository's list of versions.
        number: the version's number; None for the latest (or no version asked).
        path: the file's or folder's path inside the version ("" for its root).
        folder: the path ended in ``/``: a listing is asked for.
    """

    repository: str | None = None
    version: str | None = None
    number: int | None = None
    path: str = ""
    folder: bool = True


def _segment(raw: bytes) -> str | None:
    """A decoded path segment, or None when no saved path could hold it."""
    try:
        text = urllib.parse.unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text in ("", ".", "..") or _UNSAFE_SEGMENT.search(text):
        return None
    return text


def parse_path(raw_path: bytes) -> Route | None:
    """The route of a request's raw path, or None when it can name nothing (a 404).

    Args:
        raw_path: the request target's path, percent-encoded as sent, without the query.

    Returns:
        The route; ``folder`` is False for a repository or version named without its
        trailing ``/`` too (the app redirects those to the listing).
    """
    if not raw_path.startswith(b"/"):
        return None
    raw_segments = raw_path[1:].split(b"/")
    folder = raw_segments[-1] == b""
    if folder:
        raw_segments.pop()
    segments: list[str] = []
    for raw in raw_segments:
        segment = _segment(raw)
        if segment is None:
            return None
        segments.append(segment)
    if not segments:
        return Route()
    repository, *rest = segments
    if not rest:
        return Route(repository=repository, folder=folder)
    version, *inside = rest
    if version == LATEST:
        number = None
    elif _NUMBER.fullmatch(version):
        number = int(version)
    else:
        return None
    return Route(
        repository=repository,
        version=version,
        number=number,
        path="/".join(inside),
        folder=folder,
    )


def quote_path(*segments: str) -> str:
    """Segments percent-encoded and joined with ``/`` (for links and redirects)."""
    return "/".join(urllib.parse.quote(segment, safe="") for segment in segments)
