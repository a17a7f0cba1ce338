"""``stageline fixture DIR``: write a file repository that any static web server can serve."""

from __future__ import annotations

from pathlib import Path

import click

from ..plugins.file import write_fixture
from ._common import CommandError
from ._sync import format_bytes

__all__ = ["fixture"]


@click.command("fixture", short_help="Write a file repository (files and manifests) to serve.")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--files", type=click.IntRange(min=0), required=True, help="How many files.")
@click.option(
    "--size", type=click.IntRange(min=0), required=True, metavar="BYTES", help="Each file's size."
)
@click.option(
    "--nested",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="K",
    help="Levels of sub-repositories (nested/PULP_MANIFEST, nested/nested/…).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="The seed of the files' bytes (the same seed writes the same files).",
)
@click.option("--random", "random_content", is_flag=True, help="Random bytes instead of seeded.")
def fixture(
    directory: Path, files: int, size: int, nested: int, seed: int, random_content: bool
) -> None:
    """Write a file repository into DIRECTORY: files and a PULP_MANIFEST per level.

    The files are shared out between the root and the sub-repositories. Serve the folder
    with any static web server, or sync it directly through its file:// url.
    """
    try:
        written = write_fixture(
            directory, files, size, nested, seed=None if random_content else seed
        )
    except OSError as exc:
        raise CommandError(f"cannot write the fixture into {directory}: {exc}") from None
    click.echo(
        f"Wrote {written.files} files ({format_bytes(written.bytes)}) and "
        f"{written.manifests} manifest{'s' if written.manifests > 1 else ''} into {directory}"
    )
    click.echo(f"Sync it: stageline sync {written.directory.resolve().as_uri()}/ --repository NAME")
