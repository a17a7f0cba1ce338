"""Relative paths from upstream metadata: checked once, where they enter the model."""

from __future__ import annotations

import re
from typing import Final

from .._exceptions import UnsafePathError

__all__ = ["check_relative_path"]

#: Anything a safe relative path may not hold, in one search: a control character
#: (C0, DEL or C1, NUL included), a lone surrogate (not text: no file system, URL or
#: database can hold it), a backslash, or a segment that is empty, "." or "..". An empty
#: segment also covers an empty path, a leading "/" (absolute) and "a//b".
_UNSAFE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\\\ud800-\udfff]|(?:^|/)\.{0,2}(?:/|$)")


def check_relative_path(path: str, *, context: str = "") -> str:
    """Return ``path`` if it is a safe relative path, else raise naming it.

    A safe relative path names a file inside the folder it is joined to, on every system:
    ``/``-separated segments, none of them empty, ``.`` or ``..``, and no backslash, NUL,
    other control character or lone surrogate anywhere. Relative paths come from upstream
    metadata, which is untrusted; declarative and content artifacts check theirs when they
    are made, so that exporting, serving or storing a repository can rely on them.

    Args:
        path: the relative path to check, e.g. ``"pool/main/f/foo_1.0.deb"``.
        context: what the path belongs to, put before the message (e.g.
            ``"ContentArtifact.relative_path"``).

    Returns:
        ``path`` itself.

    Raises:
        UnsafePathError: (also a ``ValueError``) when ``path`` is not a str, or is not a
            safe relative path; the message names the path and the rule it breaks.
    """
    if isinstance(path, str) and _UNSAFE.search(path) is None:
        return path
    prefix = f"{context}: " if context else ""
    if not isinstance(path, str):
        raise UnsafePathError(f"{prefix}a relative path must be a str, got {path!r}")
    raise UnsafePathError(f"{prefix}unsafe relative path {path!r}: {_why_unsafe(path)}")


def _why_unsafe(path: str) -> str:
    if not path:
        return "it is empty"
    if path.startswith("/"):
        return "it is absolute (starts with '/'); give the path inside the repository"
    if "\\" in path:
        return "it holds a backslash; separate segments with '/'"
    for character in path:
        if ord(character) < 0x20 or 0x7F <= ord(character) <= 0x9F:
            return f"it holds the control character {character!r}"
        if 0xD800 <= ord(character) <= 0xDFFF:
            return f"it holds the lone surrogate {character!r}, which is not text"
    segments = path.split("/")
    if ".." in segments:
        return "it has a '..' segment, which could reach outside the repository"
    if "." in segments:
        return "it has a '.' segment"
    return "it has an empty segment ('//' or a trailing '/')"
