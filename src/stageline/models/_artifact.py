"""Artifacts: the files behind content, identified by their digests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import attrs

if TYPE_CHECKING:
    from ._content import Content
    from ._remote import Remote

__all__ = ["DIGEST_FIELDS", "Artifact", "ContentArtifact", "RemoteArtifact"]

#: Every digest kind an artifact can carry, weakest first.
DIGEST_FIELDS: tuple[str, ...] = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


_HEX_DIGITS = frozenset("0123456789abcdef")


def _optional_hex(
    instance: object, attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is None:
        return
    # A set comparison rather than a per-character loop: artifacts are built by the
    # hundred thousand in a sync, and this runs for every digest of each.
    if not isinstance(value, str) or not value or not _HEX_DIGITS.issuperset(value):
        raise ValueError(f"{attribute.name} must be a lower-case hex digest or None, got {value!r}")


def _optional_size(
    instance: object, attribute: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise ValueError(f"{attribute.name} must be a non-negative int or None, got {value!r}")


@attrs.define(eq=False, kw_only=True)
class _SizeAndDigests:
    """The size and digests of a file, each None when unknown (shared by two models)."""

    size: int | None = attrs.field(default=None, validator=_optional_size)
    md5: str | None = attrs.field(default=None, validator=_optional_hex)
    sha1: str | None = attrs.field(default=None, validator=_optional_hex)
    sha224: str | None = attrs.field(default=None, validator=_optional_hex)
    sha256: str | None = attrs.field(default=None, validator=_optional_hex)
    sha384: str | None = attrs.field(default=None, validator=_optional_hex)
    sha512: str | None = attrs.field(default=None, validator=_optional_hex)

    def digests(self) -> dict[str, str]:
        """Every digest known, by kind."""
        return {name: v for name in DIGEST_FIELDS if (v := getattr(self, name)) is not None}


@attrs.define(eq=False, kw_only=True)
class Artifact(_SizeAndDigests):
    """A file known by its size and digests.

    ``file`` is the path of the bytes: a temporary file right after a download, the
    content-addressed location once stored. The database keeps no path: an artifact read
    from the store has ``file`` set, from its sha256, only when the store was opened with
    a storage (``open_store(url, storage=...)``). The artifact is unsaved until the store
    gives it a primary key (``pk``). Artifacts are unique by ``sha256``.
    """

    DIGEST_FIELDS: ClassVar[tuple[str, ...]] = DIGEST_FIELDS

    file: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    pk: int | None = None

    @property
    def saved(self) -> bool:
        """True once the store has given this artifact a primary key."""
        return self.pk is not None


@attrs.define(eq=False, kw_only=True)
class ContentArtifact:
    """Ties a content unit to the file at ``relative_path``.

    ``artifact`` is None while the file is deferred (on-demand and streamed policies).
    Unique by (content, relative_path).
    """

    content: Content
    artifact: Artifact | None
    relative_path: str
    pk: int | None = None

    @property
    def saved(self) -> bool:
        """True once the store has given this row a primary key."""
        return self.pk is not None


@attrs.define(eq=False, kw_only=True)
class RemoteArtifact(_SizeAndDigests):
    """Where a content artifact can be fetched from, with every digest known for it.

    Unique by (content_artifact, remote).
    """

    url: str
    content_artifact: ContentArtifact
    remote: Remote
    pk: int | None = None

    @property
    def saved(self) -> bool:
        """True once the store has given this row a primary key."""
        return self.pk is not None
