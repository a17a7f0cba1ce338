"""``stageline demo``: a fixture repository served on 127.0.0.1, synced and re-synced."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Final

import click

from ..plugins.file import FileSyncResult, sync_files, write_fixture
from ..progress import ProgressReporter, RichReporter
from ..sync import Workspace
from ._common import backend_option, make_workspace, workspace_options
from ._running import configure_logging, run_async, stderr_console
from ._sync import format_bytes

__all__ = ["DEMO_FILES", "demo", "serving"]

#: The demo repository's size: files (shared with its nested sub-repositories), bytes each.
DEMO_FILES: Final = 2000
DEMO_FILE_SIZE: Final = 1024
DEMO_NESTED: Final = 2


#: The server's script, run by its path in a process of its own (see its docstring).
_SERVER_SCRIPT: Final = Path(__file__).with_name("_demo_server.py")

#: Seconds the server has to start, and to stop once asked.
_SERVER_TIMEOUT: Final = 30


@contextmanager
def serving(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 at a free port; yield its base url.

    The server runs in a process of its own, so that it does not compete with the sync
    for the GIL; it stops when this context ends, or with this process.
    """
    server = subprocess.Popen(
        [sys.executable, "-I", str(_SERVER_SCRIPT), str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        port = _read_port(server)
        yield f"http://127.0.0.1:{port}/"
    finally:
        _stop(server)


def _read_port(server: subprocess.Popen[bytes]) -> int:
    assert server.stdout is not None
    line = server.stdout.readline()  # b"" when it ended before listening
    try:
        return int(line)
    except ValueError:
        pass
    try:
        status: int | None = server.wait(timeout=_SERVER_TIMEOUT)
    except subprocess.TimeoutExpired:
        status = None  # still running; _stop ends it
    raise click.ClickException(
        f"the demo's HTTP server did not start (it wrote {line!r}; exit status {status})"
    )


def _stop(server: subprocess.Popen[bytes]) -> None:
    for stream in (server.stdin, server.stdout):
        if stream is not None:
            stream.close()  # closing its stdin is the server's signal to stop
    try:
        server.wait(timeout=_SERVER_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} units/s" if seconds > 0 else "- units/s"


@click.command("demo", short_help="Serve a demo repository on 127.0.0.1, sync it, sync it again.")
@click.option(
    "--files",
    type=click.IntRange(min=1),
    default=DEMO_FILES,
    show_default=True,
    help="How many files the demo repository holds.",
)
@click.option(
    "--repository",
    "-r",
    default="demo",
    show_default=True,
    metavar="NAME",
    help="The repository to sync into.",
)
@backend_option
@workspace_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bars; the summary only.")
@click.option("--verbose", "-v", count=True, help="Show the log (-vv: debug).")
def demo(
    files: int,
    repository: str,
    backend: str,
    home: str | None,
    database: str | None,
    quiet: bool,
    verbose: int,
) -> None:
    """Sync a demo repository: a fixture served on 127.0.0.1, synced, then synced again.

    The repository (small files and sub-repositories nested two deep) is written into a
    temporary folder and removed at the end; what is synced goes into the home folder
    (--home, else $STAGELINE_HOME, else the per-user data folder).
    """
    workspace = make_workspace(home, database)
    console = stderr_console()
    configure_logging(verbose, console)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stageline-demo-")))
        fixture = write_fixture(folder / "repo", files, DEMO_FILE_SIZE, DEMO_NESTED)
        url = stack.enter_context(serving(fixture.directory))
        click.echo(
            f"Serving {fixture.files} files ({format_bytes(fixture.bytes)}) in "
            f"{fixture.manifests} nested manifests at {url}"
        )
        click.echo(f"Syncing into {workspace.home} (repository {repository!r}, {backend})")
        reporters: list[ProgressReporter] = []
        if not quiet:
            reporters.append(stack.enter_context(RichReporter(console)))

        async def work() -> tuple[FileSyncResult, FileSyncResult, int]:
            async with workspace:
                first = await sync_files(url, repository, workspace=workspace, reporters=reporters)
                again = await sync_files(url, repository, workspace=workspace, reporters=reporters)
                return first, again, await _version_count(workspace, repository)

        first, again, versions = run_async(work, backend=backend)
        for reporter in reporters:
            if isinstance(reporter, RichReporter):
                reporter.close()
    made = (
        f"version {first.version.number}"
        if first.version is not None
        else f"no change (the repository held these files already, version "
        f"{first.latest_version.number})"
    )
    click.secho(
        f"First sync: {made}: {first.latest_version.content_count} units, "
        f"{first.downloaded_files} files downloaded ({format_bytes(first.downloaded_bytes)}) "
        f"in {first.seconds:.2f} s ({_rate(first.units, first.seconds)})",
        fg="green",
    )
    skipped = "skipped, the manifest is unchanged" if again.unchanged else "synced again"
    click.secho(f"Re-sync: {skipped}, no new version, in {again.seconds:.2f} s", fg="green")
    click.secho(
        f"Repository {repository!r} has {versions} versions; the latest holds "
        f"{again.latest_version.content_count} units.",
        fg="green",
        bold=True,
    )


async def _version_count(workspace: Workspace, repository: str) -> int:
    store = workspace.store
    return len(await store.list_versions(await store.get_repository(repository)))
