"""Repositories and their versions."""

from __future__ import annotations

import attrs

__all__ = ["Repository", "RepositoryVersion"]


def _non_empty_name(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"Repository.name must be a non-empty str, got {value!r}")


@attrs.define(eq=False, kw_only=True)
class Repository:
    """A named, versioned collection of content."""

    name: str = attrs.field(validator=_non_empty_name)
    description: str = ""
    pk: int | None = None

    @property
    def saved(self) -> bool:
        """True once the store has given this repository a primary key."""
        return self.pk is not None


@attrs.define(eq=False, kw_only=True)
class RepositoryVersion:
    """One numbered state of a repository.

    ``complete`` is False while the version is being built; an incomplete version is
    invisible to readers and removed if its sync fails.
    """

    repository: Repository
    number: int
    base_version: int | None = None
    complete: bool = False
    content_count: int = 0
    added_count: int = 0
    removed_count: int = 0
    pk: int | None = None

    @property
    def saved(self) -> bool:
        """True once the store has given this version a primary key."""
        return self.pk is not None
