"""What several commands share: where the workspace is, and how a command fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..sync import HOME_ENV, Workspace

__all__ = ["CommandError", "backend_option", "make_workspace", "workspace_options"]

F = TypeVar("F", bound=Callable[..., Any])


class CommandError(click.ClickException):
    """A command failed for a reason the user can act on: one line, exit code 1."""


def backend_option(command: F) -> F:
    """Add ``--backend asyncio|trio`` to ``command`` (as ``backend``; asyncio by default)."""
    return click.option(
        "--backend",
        type=click.Choice(["asyncio", "trio"]),
        default="asyncio",
        show_default=True,
        help="The event loop to run on.",
    )(command)


def workspace_options(command: F) -> F:
    """Add ``--home`` and ``--database`` to ``command`` (as ``home`` and ``database``)."""
    command = click.option(
        "--database",
        metavar="URL",
        default=None,
        help="The database: a SQLite file path or URL, or a PostgreSQL URL "
        "(default: stageline.db in the home folder).",
    )(command)
    command = click.option(
        "--home",
        metavar="DIR",
        type=click.Path(file_okay=False),
        default=None,
        # Not envvar=HOME_ENV: a folder named on the command line must exist, while the
        # default home (which $STAGELINE_HOME names) is created on first use.
        help=f"stageline's folder: the database and the artifacts (default: ${HOME_ENV}, "
        "else the per-user data folder of the platform, created on first use).",
    )(command)
    return command


def make_workspace(home: str | None, database: str | None) -> Workspace:
    """The workspace the options name."""
    return Workspace(home, database=database)
