"""Serving the content app with Hypercorn, on the event loop that is running (asyncio or Trio)."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

import anyio
import anyio.abc
from hypercorn.asyncio import serve as serve_on_asyncio
from hypercorn.config import Config, Sockets

from .._exceptions import ContentServerError
from ..sync import Workspace, open_content_fetcher
from ._app import ContentApp

__all__ = ["DEFAULT_HOST", "serve", "serve_workspace"]

#: The address served by default: this machine only.
DEFAULT_HOST: Final = "127.0.0.1"


# Seconds a server may take to stop once told to: Hypercorn's graceful timeout for the
# requests in flight (3 s), and a margin.
_STOP_TIMEOUT: Final = 10.0


class _BoundConfig(Config):
    """Hypercorn's configuration, serving a socket bound beforehand (so its port is known)."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._socket = sock
        self.errorlog = logging.getLogger("stageline.content_app.server")
        self.accesslog = None

    def create_sockets(self) -> Sockets:
        return Sockets(secure_sockets=[], insecure_sockets=[self._socket], quic_sockets=[])


def _running_trio() -> bool:
    """Whether the running event loop is Trio's (else it is asyncio's)."""
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


def _bind(host: str, port: int) -> socket.socket:
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=100)
    except OSError as exc:
        raise ContentServerError(
            f"cannot listen on {host} port {port}: {exc}; pick another --port (0 picks a "
            "free one) or stop what uses it"
        ) from exc
    sock.setblocking(False)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


async def serve(
    app: ContentApp,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    shutdown: anyio.Event | None = None,
    task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` over HTTP with Hypercorn until ``shutdown`` is set (or cancelled).

    Runs on the event loop it is called from, asyncio or Trio. The socket is bound and
    listening before ``task_status.started(url)`` is called, so a task that starts this
    one with ``url = await task_group.start(serve, app)`` can connect at once. When
    ``shutdown`` is set, or the call is cancelled, the server stops accepting
    connections and returns once the requests in flight are answered (or after
    Hypercorn's graceful timeout, 3 seconds), then the cancellation goes on.

    Args:
        app: the content app.
        host: the address to listen on; the default serves this machine only.
        port: the port; 0 picks a free one (see the url).
        shutdown: set it to stop the server; None serves until cancelled.
        task_status: receives the url served, e.g. ``http://127.0.0.1:8123/``.

    Raises:
        ContentServerError: the address cannot be listened on (in use, not local, …).
        Exception: what Hypercorn raised, when it failed while serving.
    """
    sock = _bind(host, port)
    stop = anyio.Event()
    failures: list[Exception] = []
    # Shielded: Hypercorn stops cleanly when its trigger fires, but a cancellation
    # landing inside it on asyncio breaks its shutdown. So an outer cancellation fires
    # the trigger instead (below), and is delivered once the server is done; a server
    # that does not stop in time after that is cancelled all the same.
    shield = anyio.CancelScope(shield=True)

    async def run_server() -> None:
        with shield:
            try:
                await _run_hypercorn(app, _BoundConfig(sock), stop.wait)
            except Exception as exc:  # handed to the caller's task, unwrapped
                failures.append(exc)
            finally:
                stop.set()

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run_server)
            task_status.started(_url(sock))
            try:
                if shutdown is None:
                    await stop.wait()
                else:
                    async with anyio.create_task_group() as waiting:
                        waiting.start_soon(_set_when, shutdown, stop)
                        await stop.wait()
                        waiting.cancel_scope.cancel()
            finally:
                stop.set()
                shield.deadline = anyio.current_time() + _STOP_TIMEOUT
    finally:
        sock.close()
    if failures:
        raise failures[0]


async def _set_when(event: anyio.Event, then: anyio.Event) -> None:
    await event.wait()
    then.set()


async def _run_hypercorn(
    app: ContentApp, config: Config, trigger: Callable[[], Awaitable[Any]]
) -> None:
    framework = cast(Any, app)
    if _running_trio():
        # Trio is an optional dependency: imported when it is the one running.
        from hypercorn.trio import serve as serve_on_trio

        await serve_on_trio(framework, config, shutdown_trigger=trigger)
    else:
        await serve_on_asyncio(framework, config, shutdown_trigger=trigger)


async def serve_workspace(
    workspace: Workspace | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    shutdown: anyio.Event | None = None,
    task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a workspace's repositories: :func:`serve` of a :class:`ContentApp` on a
    fetcher opened (and closed at the end) by :func:`~stageline.sync.open_content_fetcher`.

    Args:
        workspace: where the data is; None for :class:`~stageline.sync.Workspace()`.
        host, port, shutdown, task_status: as for :func:`serve`.

    Raises:
        ContentServerError: the address cannot be listened on.
        StoreError: the store cannot be opened.
        StorageError: the fetcher's temporary area cannot be created.
    """
    async with open_content_fetcher(workspace) as fetcher:
        await serve(
            ContentApp(fetcher), host=host, port=port, shutdown=shutdown, task_status=task_status
        )
