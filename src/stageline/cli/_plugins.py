"""Importing the plugins, so that the content they declared can be read back.

A saved unit is rebuilt by the class that declares its content type, which must be
imported first (see ``ContentTypeError``). Commands that read content (serve, export,
the listings) call :func:`load_plugins`: it imports every module of the reference
plugins (``stageline.plugins``) and every module named by an installed distribution's
``stageline.plugins`` entry point.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import pkgutil

from ._common import CommandError

__all__ = ["ENTRY_POINT_GROUP", "load_plugins"]

#: The entry point group a third-party plugin declares its content types' module in.
ENTRY_POINT_GROUP = "stageline.plugins"


def load_plugins() -> None:
    """Import the reference plugins and those installed under the entry point group.

    Raises:
        CommandError: a plugin failed to import (its name and the error say which).
    """
    names: list[str] = []
    if importlib.util.find_spec("stageline.plugins") is not None:
        package = importlib.import_module("stageline.plugins")
        names.extend(
            info.name for info in pkgutil.iter_modules(package.__path__, "stageline.plugins.")
        )
    names.extend(
        entry.value.partition(":")[0]
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    )
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise CommandError(f"cannot import the stageline plugin {name!r}: {exc}") from exc
