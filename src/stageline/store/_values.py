"""Values checked before they reach the database, so that SQLite and PostgreSQL refuse alike.

PostgreSQL refuses text with a NUL character, text longer than its column, integers out
of their column's range and index entries over its btree limit; SQLite keeps most of
these (or fails with a raw driver error, such as an ``OverflowError`` for an int beyond
64 bits). The store checks them here, once, and raises :class:`StoreArgumentError` naming
the value, so both databases refuse the same input with the same error. The checks cost
a few string operations per value; the hot paths call them once per row.
"""

from __future__ import annotations

from typing import Any

from .._exceptions import StoreArgumentError

__all__ = [
    "BIGINT_MAX",
    "DIGEST_LENGTHS",
    "INTEGER_MAX",
    "NAME_MAX_CHARS",
    "RELATIVE_PATH_MAX_BYTES",
    "check_file_values",
    "check_int",
    "check_text",
]

#: The range of a BIGINT column (sizes, primary keys, counts).
BIGINT_MAX = 2**63 - 1
#: The range of an INTEGER column (version numbers).
INTEGER_MAX = 2**31 - 1

#: Names (repositories, remotes, content types) are unique, so indexed: at most this
#: many characters, which stays far below PostgreSQL's btree entry limit (about 2.7 kB)
#: whatever the characters.
NAME_MAX_CHARS = 255

#: A relative path is part of the unique index (content, relative_path): at most this
#: many bytes in UTF-8, under PostgreSQL's btree entry limit with the rest of the entry.
RELATIVE_PATH_MAX_BYTES = 2048

#: The width of each digest column: the hex length of its algorithm.
DIGEST_LENGTHS = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}

_SHOWN = 80


def _shown(value: str) -> str:
    """``value``'s repr, cut short for a message."""
    if len(value) <= _SHOWN:
        return repr(value)
    return repr(value[:_SHOWN]) + f"… ({len(value)} characters)"


def check_text(
    value: str, what: str, *, max_chars: int | None = None, max_bytes: int | None = None
) -> None:
    """Refuse text that a database cannot store, or would store differently.

    Args:
        value: the text.
        what: names the value in the message ("repository name").
        max_chars: the column's width in characters, if it has one.
        max_bytes: the most UTF-8 bytes an index entry leaves for it, if it is indexed.

    Raises:
        StoreArgumentError: ``value`` holds a NUL character, is not valid Unicode (a lone
            surrogate), or is longer than allowed.
    """
    if "\x00" in value:
        raise StoreArgumentError(
            f"{what} {_shown(value)} contains a NUL character, which PostgreSQL cannot store "
            "in text (and SQLite cuts text short at it in places); remove it"
        )
    size = len(value)
    if not value.isascii():
        try:
            size = len(value.encode())
        except UnicodeEncodeError as exc:
            raise StoreArgumentError(
                f"{what} {_shown(value)} is not valid Unicode ({exc}); a lone surrogate, as "
                "os.fsdecode makes of a file name that is not UTF-8, cannot be stored: decode "
                "such names explicitly"
            ) from exc
    if max_chars is not None and len(value) > max_chars:
        raise StoreArgumentError(
            f"{what} {_shown(value)} is {len(value)} characters long; at most {max_chars} "
            "fit its database column: shorten it"
        )
    if max_bytes is not None and size > max_bytes:
        raise StoreArgumentError(
            f"{what} {_shown(value)} is {size} bytes long in UTF-8; at most {max_bytes} fit "
            "the database's index on it: shorten it"
        )


def check_int(value: int, what: str, *, maximum: int = BIGINT_MAX) -> None:
    """Refuse an integer outside a database column's range.

    Raises:
        StoreArgumentError: ``value`` is below ``-maximum - 1`` or above ``maximum``.
    """
    if not -maximum - 1 <= value <= maximum:
        raise StoreArgumentError(
            f"{what} {value} is out of range: the database column holds integers from "
            f"{-maximum - 1} to {maximum}"
        )


def check_file_values(obj: Any, what: str) -> None:
    """Refuse a size or digest of an artifact (or remote artifact) that no column holds.

    The models validate these where they are made; this catches an object changed
    behind their validators (``object.__setattr__``), so the row is refused alike.

    Raises:
        StoreArgumentError: the size is beyond a BIGINT, or a digest holds a NUL character or
            is longer than its algorithm's hex length.
    """
    size = obj.size
    if size is not None and size > BIGINT_MAX:
        raise StoreArgumentError(
            f"{what} {obj!r} has size {size}, beyond the largest size the database holds "
            f"({BIGINT_MAX} bytes)"
        )
    for name, length in DIGEST_LENGTHS.items():
        digest = getattr(obj, name)
        if digest is not None and (len(digest) > length or "\x00" in digest):
            raise StoreArgumentError(
                f"{what} {obj!r} has a {name} of {len(digest)} characters ({_shown(digest)}); "
                f"a {name} digest is {length} hex digits"
            )
