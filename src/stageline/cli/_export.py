"""``stageline export``: a version's files and a manifest, written into a folder."""

from __future__ import annotations

import json
from typing import Literal

import anyio
import click

from .._exceptions import ContentNotFound, DownloadError, ExportError, StagelineError
from ..sync import DEFAULT_EXPORT_CONCURRENCY, ExportResult, export_version
from ._common import CommandError, backend_option, make_workspace, workspace_options
from ._plugins import load_plugins

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
    try:
        result: ExportResult = anyio.run(
            lambda: export_version(workspace, name, directory, version=number, overwrite=overwrite),
            backend=backend,
        )
    except KeyboardInterrupt:
        # The export was cancelled: its temporary files are gone, the files written are
        # whole, and there is no manifest.
        click.echo(
            f"Interrupted: {directory} holds the files written so far, and no manifest",
            err=True,
        )
        raise SystemExit(130) from None
    except (ContentNotFound, ExportError) as exc:
        raise CommandError(str(exc)) from exc
    except DownloadError as exc:
        raise CommandError(f"a file could not be fetched: {exc}") from exc
    except StagelineError as exc:
        raise CommandError(f"{type(exc).__name__}: {exc}") from exc
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
