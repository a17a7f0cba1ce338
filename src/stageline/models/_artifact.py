"""Artifacts: the files behind content, identified by their digests."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar, Final

import attrs

from .._exceptions import InvalidValueError, MalformedDigestError, UnsafePathError
from .._slots import slot_setter
from ._paths import check_relative_path

if TYPE_CHECKING:
    from ._content import Content
    from ._remote import Remote

__all__ = ["DIGEST_FIELDS", "DIGEST_LENGTHS", "Artifact", "ContentArtifact", "RemoteArtifact"]

#: Every digest kind an artifact can carry, weakest first.
DIGEST_FIELDS: tuple[str, ...] = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


#: The length of each kind's hex digest.
DIGEST_LENGTHS: Final[Mapping[str, int]] = MappingProxyType(
    {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
)

_HEX_DIGITS: Final = b"0123456789abcdef"


def _hex_digest(length: int) -> Callable[[object, attrs.Attribute[str | None], str | None], None]:
    """A validator for a digest of ``length`` hex digits (or None, for unknown)."""

    def check(instance: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
        # Artifacts are made by the hundred thousand in a sync and this runs for every
        # digest of each, so the hex test is one C loop: deleting every hex digit from the
        # (ASCII) bytes leaves nothing. A regex costs 3x that, a frozenset superset test
        # (one hash per character) 10x.
        if value is None or (
            type(value) is str
            and len(value) == length
            and value.isascii()
            and not value.encode().translate(None, _HEX_DIGITS)
        ):
            return
        raise MalformedDigestError(
            f"{type(instance).__name__}.{attribute.name} must be {length} lowercase hex "
            f"digits (a {attribute.name} digest) or None, got {value!r}; check where "
            "the digest was read from (upstream metadata is untrusted)"
        )

    return check


def _optional_size(
    instance: object, attribute: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise InvalidValueError(
            f"{type(instance).__name__}.{attribute.name} must be a non-negative int or None, "
            f"got {value!r}"
        )


def _relative_path(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    try:
        check_relative_path(value)
    except UnsafePathError:
        # Again, naming the field: the context is built only for a path that fails (a
        # sync makes a content artifact per file, whose path is nearly always safe).
        check_relative_path(value, context=f"{type(instance).__name__}.{attribute.name}")
        raise


@attrs.define(eq=False, kw_only=True)
class _SizeAndDigests:
    """The size and digests of a file, each None when unknown (shared by two models)."""

    size: int | None = attrs.field(default=None, validator=_optional_size)
    md5: str | None = attrs.field(default=None, validator=_hex_digest(DIGEST_LENGTHS["md5"]))
    sha1: str | None = attrs.field(default=None, validator=_hex_digest(DIGEST_LENGTHS["sha1"]))
    sha224: str | None = attrs.field(default=None, validator=_hex_digest(DIGEST_LENGTHS["sha224"]))
    sha256: str | None = attrs.field(default=None, validator=_hex_digest(DIGEST_LENGTHS["sha256"]))
    sha384: str | None = attrs.field(default=None, validator=_hex_digest(DIGEST_LENGTHS["sha384"]))
    sha512: str | None = attrs.field(default=None, validator=_hex_digest(DIGEST_LENGTHS["sha512"]))

    def digests(self) -> dict[str, str]:
        """Every digest known, by kind."""
        return {name: v for name in DIGEST_FIELDS if (v := getattr(self, name)) is not None}


def _to_path(value: str | os.PathLike[str] | None) -> Path | None:
    # A Path is kept as it is: a sync sets ``file`` several times per artifact, and
    # ``Path(path)`` would parse the whole path again each time.
    if value is None or isinstance(value, Path):
        return value
    return Path(value)


@attrs.define(eq=False, kw_only=True)
class Artifact(_SizeAndDigests):
    """A file known by its size and digests.

    Each digest is None (unknown) or the lowercase hex digest of its kind, of its kind's
    length (:data:`DIGEST_LENGTHS`); anything else is refused where the artifact is made,
    so a malformed digest never reaches the database.

    ``file`` is the path of the bytes: a temporary file right after a download, the
    content-addressed location once stored. The database keeps no path: an artifact read
    from the store has ``file`` set, from its sha256, only when the store was opened with
    a storage (``open_store(url, storage=...)``). The artifact is unsaved until the store
    gives it a primary key (``pk``). Artifacts are unique by ``sha256``.

    Raises:
        MalformedDigestError: (a ``ValueError``) when a digest is not lowercase hex of its
            kind's length.
        InvalidValueError: (a ``ValueError``) when ``size`` is not a non-negative int.
    """

    DIGEST_FIELDS: ClassVar[tuple[str, ...]] = DIGEST_FIELDS

    file: Path | None = attrs.field(default=None, converter=_to_path)
    pk: int | None = None

    # Written by hand rather than generated: a first stage makes one per file inside the
    # sync's timed path, and attrs' __init__ (the converter, then each validator through
    # its attribute) cost 3.9 us against 1.3 us here. The values, the checks, their order
    # (size, then each digest, weakest first) and their messages are the generated one's;
    # a subclass made with attrs gets a generated one again.
    def __init__(
        self,
        *,
        size: int | None = None,
        md5: str | None = None,
        sha1: str | None = None,
        sha224: str | None = None,
        sha256: str | None = None,
        sha384: str | None = None,
        sha512: str | None = None,
        file: str | os.PathLike[str] | None = None,
        pk: int | None = None,
    ) -> None:
        _SET_SIZE(self, size)
        _SET_MD5(self, md5)
        _SET_SHA1(self, sha1)
        _SET_SHA224(self, sha224)
        _SET_SHA256(self, sha256)
        _SET_SHA384(self, sha384)
        _SET_SHA512(self, sha512)
        _SET_FILE(self, _to_path(file))
        _SET_PK(self, pk)
        if size is not None and (type(size) is not int or size < 0):
            _optional_size(self, _FIELDS.size, size)
        # A sha256 alone (the usual declaration) is checked without the loop.
        if md5 is None and sha1 is None and sha224 is None and sha384 is None and sha512 is None:
            if sha256 is not None:
                _CHECK_SHA256(self, _FIELDS.sha256, sha256)
            return
        for check, attribute, value in zip(
            _DIGEST_CHECKS,
            _DIGEST_ATTRIBUTES,
            (md5, sha1, sha224, sha256, sha384, sha512),
            strict=True,
        ):
            if value is not None:
                check(self, attribute, value)

    @property
    def saved(self) -> bool:
        """True once the store has given this artifact a primary key."""
        return self.pk is not None


_FIELDS = attrs.fields(Artifact)
_SET_SIZE = slot_setter(Artifact, "size")
_SET_MD5 = slot_setter(Artifact, "md5")
_SET_SHA1 = slot_setter(Artifact, "sha1")
_SET_SHA224 = slot_setter(Artifact, "sha224")
_SET_SHA256 = slot_setter(Artifact, "sha256")
_SET_SHA384 = slot_setter(Artifact, "sha384")
_SET_SHA512 = slot_setter(Artifact, "sha512")
_SET_FILE = slot_setter(Artifact, "file")
_SET_PK = slot_setter(Artifact, "pk")
_DIGEST_ATTRIBUTES = tuple(getattr(_FIELDS, name) for name in DIGEST_FIELDS)
_DIGEST_CHECKS: tuple[Callable[[object, attrs.Attribute[str | None], str | None], None], ...] = (
    tuple(attribute.validator for attribute in _DIGEST_ATTRIBUTES)
)
_CHECK_SHA256 = _DIGEST_CHECKS[DIGEST_FIELDS.index("sha256")]


@attrs.define(eq=False, kw_only=True)
class ContentArtifact:
    """Ties a content unit to the file at ``relative_path``.

    ``artifact`` is None while the file is deferred (on-demand and streamed policies).
    Unique by (content, relative_path). ``relative_path`` is checked with
    :func:`check_relative_path` where the object is made.

    Raises:
        UnsafePathError: (a ``ValueError``) when ``relative_path`` is not a safe relative
            path.
    """

    content: Content
    artifact: Artifact | None
    relative_path: str = attrs.field(validator=_relative_path)
    pk: int | None = None

    @property
    def saved(self) -> bool:
        """True once the store has given this row a primary key."""
        return self.pk is not None


@attrs.define(eq=False, kw_only=True)
class RemoteArtifact(_SizeAndDigests):
    """Where a content artifact can be fetched from, with every digest known for it.

    Unique by (content_artifact, remote). Digests are checked as :class:`Artifact`'s are.

    Raises:
        MalformedDigestError: (a ``ValueError``) when a digest is not lowercase hex of its
            kind's length.
        InvalidValueError: (a ``ValueError``) when ``size`` is not a non-negative int.
    """

    url: str
    content_artifact: ContentArtifact
    remote: Remote
    pk: int | None = None

    @property
    def saved(self) -> bool:
        """True once the store has given this row a primary key."""
        return self.pk is not None
