"""stageline's own folder: the one place it creates on demand, readable by its owner only."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .._exceptions import StoreError

__all__ = ["HOME_ENV", "create_home", "default_database_path", "default_home"]

#: The environment variable that names stageline's home folder.
HOME_ENV = "STAGELINE_HOME"

_DATABASE_NAME = "stageline.db"


def _user_data_folder() -> Path:
    """The platform's per-user data folder (where applications keep their data)."""
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA")
        return Path(local) if local else Path.home() / "AppData" / "Local"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support"
    # The XDG Base Directory specification: a relative XDG_DATA_HOME is invalid, ignore it.
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg)
    return Path.home() / ".local" / "share"


def default_home(*, create: bool = True) -> Path:
    """stageline's home folder, created on demand, readable by its owner only.

    ``$STAGELINE_HOME`` when set, else ``stageline`` in the platform's per-user data
    folder: ``$XDG_DATA_HOME/stageline`` or ``~/.local/share/stageline`` on Linux and
    other Unixes, ``~/Library/Application Support/stageline`` on macOS,
    ``%LOCALAPPDATA%\\stageline`` on Windows. A missing home is created (with its missing
    parents) with mode 0o700, as it holds credentials; an existing one is used as it is.
    This is the only folder stageline creates on its own: an explicit database path must
    be in a folder that exists.

    Args:
        create: False to only compute the path (a caller that creates the folder when it
            first writes there).

    Returns:
        The absolute path of the folder, which exists unless ``create`` is False.

    Raises:
        StoreError: the folder cannot be created (the message names it and the variable
            that chooses another).
    """
    configured = os.environ.get(HOME_ENV)
    home = (
        Path(configured).expanduser() if configured else _user_data_folder() / "stageline"
    ).absolute()
    return create_home(home) if create else home


def create_home(home: Path) -> Path:
    """Create stageline's home folder ``home`` when missing, readable by its owner only.

    Missing parents are created too; an existing folder is used as it is.

    Returns:
        ``home``.

    Raises:
        StoreError: the folder cannot be created (the message names it and the variable
            that chooses another).
    """
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create stageline's home folder {home}: {exc}; set {HOME_ENV} to a "
            "folder you can write to"
        ) from exc
    return home


def default_database_path() -> Path:
    """The SQLite database in :func:`default_home` (which is created when missing).

    Pass it to :func:`open_store` to use stageline's default database.

    Raises:
        StoreError: the home folder cannot be created.
    """
    return default_home() / _DATABASE_NAME
