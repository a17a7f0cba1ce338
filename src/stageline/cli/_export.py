"""``stageline export``: a version's files and a manifest, written into a folder."""

from __future__ import annotations

import json
from typing import Literal

import click

from .._exceptions import ContentNotFound, DownloadError, ExportError, StagelineError
from ..sync import DEFAULT_EXPORT_CONCURRENCY, ExportResult, export_version
from ._common import CommandError, backend_option, make_workspace, workspace_options
from ._plugins import load_plugins
from ._running import run_async

__all__ = ["export"]


@click.command("export", short_help="Write a version's files and a manifest into a folder.")
@click.argument("name")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--version",
    "number",
    type=click.IntRange(min=0),
    default=None,
    help="The version's number (default: the latest).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Write into a folder that is not empty, replacing files at the same paths.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=DEFAULT_EXPORT_CONCURRENCY,
    show_default=True,
    help="Files fetched and written at once.",
)
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@workspace_options
def export(
    name: str,
    directory: str,
    number: int | None,
    overwrite: bool,
    concurrency: int,
    backend: Literal["asyncio", "trio"],
    as_json: bool,
    home: str | None,
    database: str | None,
) -> None:
    """Write the files of repository NAME's version into DIRECTORY, with a PULP_MANIFEST.

    Files synced on demand are fetched from upstream first. DIRECTORY must be empty (or
    new) unless --overwrite is given. Each file is written whole or not at all; the
    manifest is written last, so its absence marks an export that did not finish.
    """
    load_plugins()
    workspace = make_workspace(home, database)

    async def work() -> ExportResult:
        try:
            return await export_version(
                workspace, name, directory, version=number, overwrite=overwrite
            )
        except (ContentNotFound, ExportError) as exc:
            raise CommandError(str(exc)) from exc
        except DownloadError as exc:
            raise CommandError(f"a file could not be fetched: {exc}") from exc
        except StagelineError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}") from exc

    # run_async, as sync does, not a bare anyio.run: Ctrl-C then cancels the export
    # through a signal receiver and an anyio cancel scope on both backends. Under a bare
    # asyncio run, Ctrl-C is asyncio's native cancellation of the main task, and the
    # SIGINT test saw an export go on past it until a read timed out (exit code 1). After
    # a cancelled export its temporary files are gone, the files written are whole, and
    # there is no manifest.
    result = run_async(
        work,
        backend=backend,
        interrupted_message=(
            f"Interrupted: {directory} holds the files written so far, and no manifest"
        ),
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "repository": result.repository,
                    "version": result.version,
                    "directory": str(result.directory),
                    "manifest": str(result.manifest),
                    "files": result.files,
                    "bytes": result.bytes,
                    "fetched": result.fetched,
                }
            )
        )
        return
    fetched = f" ({result.fetched} fetched from upstream)" if result.fetched else ""
    click.echo(
        f"Exported version {result.version} of {result.repository!r}: {result.files} files, "
        f"{result.bytes} bytes{fetched}, into {result.directory} "
        f"(manifest {result.manifest.name})"
    )
