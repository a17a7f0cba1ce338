"""A content type for tests, and a shortcut to make declarative items of it."""

from __future__ import annotations

from typing import ClassVar

import attrs

from .._declarative import DeclarativeContent
from .._exceptions import InvalidValueError
from ..models import Content

__all__ = ["SampleContent", "sample_items"]


@attrs.define(eq=False, kw_only=True)
class SampleContent(Content):
    """A minimal content type for tests: one field, ``name``, which is its natural key."""

    type_name: ClassVar[str] = "stageline.testing.sample"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("name",)

    name: str


def sample_items(count: int, *, prefix: str = "") -> list[DeclarativeContent]:
    """``count`` fresh declarative items of :class:`SampleContent` named ``prefix + "0"``, ….

    Raises:
        ValueError: when ``count`` is negative.
    """
    if count < 0:
        raise InvalidValueError(f"sample_items(count=...) must be >= 0, got {count!r}")
    return [DeclarativeContent(SampleContent(name=f"{prefix}{i}")) for i in range(count)]
