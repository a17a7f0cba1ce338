"""Repositories and their versions."""

from __future__ import annotations

import attrs

from .._exceptions import InvalidValueError

__all__ = ["Repository", "RepositoryVersion"]


def _non_empty_name(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidValueError(f"Repository.name must be a non-empty str, got {value!r}")


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

    Version 0 is the empty version every repository starts with; each committed change
    creates ``number + 1``. ``complete`` is False while the version is being built; an
    incomplete version is invisible to readers and removed if its sync fails.

    Attributes:
        repository: the repository this is a version of.
        number: 0, 1, 2, … in the order versions were committed.
        base_version: the number of the version it was built on (None for version 0).
        complete: True once committed.
        content_count: how many units the version holds.
        added_count: how many units it added relative to ``base_version``.
        removed_count: how many units it removed relative to ``base_version``.
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
