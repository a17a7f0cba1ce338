"""The ``stageline`` command: sync repositories, look at them, serve and export them.

Each command lives in a module of its own and is added to :func:`main` here; options
shared by several commands (where the workspace is) live in ``_common``.
"""

from __future__ import annotations

import click

from .._about import VERSION
from ._content import content
from ._demo import demo
from ._export import export
from ._fixture import fixture
from ._repository import repository
from ._running import INTERRUPTED_EXIT_CODE
from ._serve import serve
from ._sync import sync

__all__ = ["main"]


class _Commands(click.Group):
    """The command group: Ctrl-C anywhere in a command exits 130, as inside its work.

    A command's async work handles Ctrl-C itself (:func:`run_async`: it undoes what it
    began and exits 130). One that lands outside it (while a command prepares, or
    prints its summary) would reach click, which prints "Aborted!" and exits 1.
    """

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("stageline: interrupted", err=True)
            raise click.exceptions.Exit(INTERRUPTED_EXIT_CODE) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, prog_name="stageline")
def main() -> None:
    """Synchronize content repositories into local, versioned storage."""


main.add_command(demo)
main.add_command(sync)
main.add_command(repository)
main.add_command(content)
main.add_command(serve)
main.add_command(export)
main.add_command(fixture)
