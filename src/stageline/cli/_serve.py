"""``stageline serve``: the content app over HTTP, until Ctrl-C."""

from __future__ import annotations

import importlib.util
import ipaddress
import signal
from typing import Literal

import anyio
import click

from .._exceptions import ContentServerError, StagelineError
from ..content_app import DEFAULT_HOST, serve_workspace
from ..sync import Workspace
from ._common import CommandError, backend_option, make_workspace, workspace_options
from ._plugins import load_plugins

__all__ = ["serve"]

#: The port served when none is given.
DEFAULT_PORT = 8080


class _Announce:
    """Prints the url once the server listens (a task status, as anyio's ``start`` gives)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def started(self, value: str | None = None) -> None:
        click.echo(f"Serving {self.workspace.home} at {value} (press Ctrl-C to stop)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _stop_on_signal(shutdown: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            shutdown.set()
            return


async def _serve(workspace: Workspace, host: str, port: int) -> None:
    shutdown = anyio.Event()
    failure: StagelineError | None = None
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_stop_on_signal, shutdown)
        try:
            await serve_workspace(
                workspace,
                host=host,
                port=port,
                shutdown=shutdown,
                task_status=_Announce(workspace),
            )
        except StagelineError as exc:
            failure = exc  # raised below, outside the task group that would wrap it
        finally:
            tasks.cancel_scope.cancel()
    if failure is not None:
        raise failure


@click.command("serve", short_help="Serve the repositories over HTTP until Ctrl-C.")
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    help="The address to listen on; the default serves this machine only.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="The port to listen on; 0 picks a free one.",
)
@backend_option
@workspace_options
def serve(
    host: str,
    port: int,
    backend: Literal["asyncio", "trio"],
    home: str | None,
    database: str | None,
) -> None:
    """Serve the repositories over HTTP: /REPOSITORY/VERSION|latest/PATH.

    Folders are listed as HTML; files are sent with their length, an ETag (their
    sha256) and byte ranges. Files synced on demand are fetched from upstream when first
    asked for (and kept, unless their remote's policy is "streamed"). Ctrl-C stops.
    """
    if backend == "trio" and importlib.util.find_spec("trio") is None:
        raise CommandError("--backend trio needs Trio: pip install 'stageline[trio]'")
    load_plugins()
    if not _is_loopback(host):
        click.echo(
            f"Warning: listening on {host}: whoever can reach it can read every repository "
            "(there is no authentication; put a reverse proxy in front of it)",
            err=True,
        )
    workspace = make_workspace(home, database)
    try:
        anyio.run(_serve, workspace, host, port, backend=backend)
    except KeyboardInterrupt:
        # Ctrl-C before the server listened (once it listens, Ctrl-C stops it cleanly).
        raise SystemExit(130) from None
    except ContentServerError as exc:
        raise CommandError(str(exc)) from exc
    except StagelineError as exc:
        raise CommandError(f"{type(exc).__name__}: {exc}") from exc
    click.echo("Stopped.")
