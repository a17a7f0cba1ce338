"""The setters of attrs slots, for the hand-written initializers on the sync's hot path."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["slot_setter"]


def slot_setter(cls: type, name: str) -> Callable[[object, object], None]:
    """The setter of slot ``name`` of an attrs slotted class (no on-setattr hooks)."""
    descriptor = next(klass.__dict__[name] for klass in cls.__mro__ if name in klass.__dict__)
    setter: Callable[[object, object], None] = descriptor.__set__
    return setter
