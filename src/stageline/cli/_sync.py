"""``stageline sync URL --repository NAME``: sync a file repository, with live progress."""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

import click

from ..plugins.file import FileSyncResult, sync_files
from ..progress import ProgressReporter, RichReporter
from ._common import backend_option, make_workspace, workspace_options
from ._download_options import download_options, remote_settings
from ._running import configure_logging, run_async, stderr_console

__all__ = ["format_bytes", "print_result", "sync"]


def format_bytes(count: int) -> str:
    """``count`` bytes for people: ``512 B``, ``1.5 KiB``, ``3.2 MiB``."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def print_result(result: FileSyncResult, *, verbose: int = 0) -> None:
    """Print what a sync did, in a few lines, on standard output."""
    latest = result.latest_version
    if result.unchanged:
        click.echo(
            f"{result.repository}: unchanged, the manifest and options are those of the last "
            f"sync (version {latest.number}, {_plural(latest.content_count, 'unit')}); "
            f"{result.seconds:.2f} s. Use --force to sync anyway."
        )
        return
    if verbose and result.reasons:
        click.echo(f"{result.repository}: synced because {'; '.join(result.reasons)}")
    if result.version is None:
        made = f"no change, still version {latest.number}"
    else:
        made = (
            f"version {result.version.number} (+{result.version.added_count} "
            f"-{result.version.removed_count})"
        )
    click.echo(
        f"{result.repository}: {made}, {_plural(latest.content_count, 'unit')}; "
        f"{_plural(result.units, 'entry', 'entries')} in "
        f"{_plural(result.manifests, 'manifest')}, "
        f"{_plural(result.downloaded_files, 'file')} downloaded "
        f"({format_bytes(result.downloaded_bytes)}) in {result.seconds:.2f} s"
    )
    for skipped in result.skipped_units:
        path = getattr(skipped.content, "relative_path", skipped.content)
        click.echo(f"  skipped {path}: {' '.join(str(skipped.error).split())}")


@click.command("sync")
@click.argument("url")
@click.option(
    "--repository", "-r", required=True, metavar="NAME", help="The repository to sync into."
)
@click.option("--mirror", is_flag=True, help="Remove what the manifest no longer lists.")
@click.option(
    "--policy",
    type=click.Choice(["immediate", "on_demand", "streamed"]),
    default="immediate",
    show_default=True,
    help="When files are downloaded: now, when first served (then kept), or when served.",
)
@click.option(
    "--on-error",
    type=click.Choice(["fail", "skip"]),
    default="fail",
    show_default=True,
    help="What a failed download does: fail the sync, or leave its unit out.",
)
@click.option(
    "--max-skipped",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="With --on-error skip: fail once more than N units were left out.",
)
@click.option("--force", is_flag=True, help="Sync in full even when the manifest is unchanged.")
@backend_option
@workspace_options
@download_options
@click.option("--quiet", "-q", is_flag=True, help="No progress and no summary; errors only.")
@click.option("--verbose", "-v", count=True, help="Show the log (-vv: debug).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def sync(**options: Any) -> None:
    """Sync the file repository at URL into the repository NAME.

    URL is a PULP_MANIFEST's url (http, https or file), or its folder's, ending in /.
    When the manifest and the options are those of the last sync, nothing is done.
    Exit code: 0 on success, 1 on an error, 130 after Ctrl-C (nothing is kept then).
    """
    settings = remote_settings(options)
    quiet, verbose, as_json = options["quiet"], options["verbose"], options["as_json"]
    if options["max_skipped"] is not None and options["on_error"] != "skip":
        raise click.UsageError("--max-skipped needs --on-error skip")
    workspace = make_workspace(options["home"], options["database"])
    console = stderr_console()
    configure_logging(verbose, console)
    with ExitStack() as stack:
        reporters: list[ProgressReporter] = []
        if not quiet:
            reporters.append(stack.enter_context(RichReporter(console)))

        async def work() -> FileSyncResult:
            return await sync_files(
                options["url"],
                options["repository"],
                workspace=workspace,
                mirror=options["mirror"],
                policy=options["policy"],
                remote_settings=settings,
                on_error=options["on_error"],
                max_skipped=options["max_skipped"],
                force=options["force"],
                reporters=reporters,
            )

        result = run_async(work, backend=options["backend"])
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif not quiet:
        print_result(result, verbose=verbose)
