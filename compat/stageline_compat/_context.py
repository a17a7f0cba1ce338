"""The sync a shimmed stage runs in: where stages made without arguments find their store.

Asyncio-era plugins make the default stages without arguments (``ContentSaver()``): the
database was global. stageline hands each stage its collaborators; the shim bridges the two
by keeping the running :class:`stageline_compat.DeclarativeVersion`'s sync in a context
variable, set for the whole sync (and so inherited by every stage task), from which a stage
made without a store, a storage or a downloader factory takes them when it starts to run.
"""

from __future__ import annotations

import contextvars
from typing import Final

import stageline
from stageline import StageConfigurationError

__all__ = ["current_sync", "running_sync", "sync_context"]

#: The native sync a ``stageline_compat.DeclarativeVersion`` is running, or None.
sync_context: Final[contextvars.ContextVar[stageline.DeclarativeVersion | None]] = (
    contextvars.ContextVar("stageline_compat_sync", default=None)
)


def current_sync() -> stageline.DeclarativeVersion | None:
    """The sync running in this task, or None outside a ``stageline_compat`` sync."""
    return sync_context.get()


def running_sync(stage: object, missing: str) -> stageline.DeclarativeVersion:
    """The running sync, for ``stage`` that was made without ``missing``.

    Raises:
        StageConfigurationError: (a ``ValueError``) no ``stageline_compat`` sync runs here.
    """
    sync = sync_context.get()
    if sync is None:
        name = type(stage).__qualname__
        raise StageConfigurationError(
            f"{name} was made without its {missing} and is not running inside a "
            f"stageline_compat.DeclarativeVersion sync, whose {missing} it would use; "
            f"pass it: {name}({missing}=...)"
        )
    return sync
