"""Helpers of the content app tests: the app served over real HTTP on the test's backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
import httpx

from stageline import Workspace
from stageline.content_app import serve_workspace

from ..sync._plugin import Upstream


@asynccontextmanager
async def serving(workspace: Workspace) -> AsyncIterator[httpx.AsyncClient]:
    """Serve ``workspace`` with Hypercorn on 127.0.0.1 (a free port); yield a client of it."""
    shutdown = anyio.Event()
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            url = await tasks.start(partial(serve_workspace, workspace, shutdown=shutdown))
            try:
                async with httpx.AsyncClient(base_url=url) as client:
                    yield client
            finally:
                shutdown.set()


async def raw_request(url: str, target: str) -> tuple[int, bytes]:
    """GET ``target`` sent as is (no client normalises it): the status, and the head and
    body received (the body read to its Content-Length)."""
    parsed = httpx.URL(url)
    assert parsed.port is not None
    with anyio.fail_after(10):
        async with await anyio.connect_tcp(parsed.host, parsed.port) as stream:
            request = f"GET {target} HTTP/1.1\r\nHost: {parsed.host}\r\nConnection: close\r\n\r\n"
            await stream.send(request.encode("latin-1"))
            received = b""
            while b"\r\n\r\n" not in received:
                received += await stream.receive()
            head, _, body = received.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(body) < length:
                body += await stream.receive()
    return int(head.split()[1]), received[: len(head) + 4] + body


def wait_for_requests(upstream: Upstream, count: int, limit: float = 10.0) -> None:
    """Block until upstream has received ``count`` requests for files (in a worker thread)."""
    state = upstream.server.state
    manifest = upstream.prefix + "MANIFEST"
    with state.changed:
        if not state.changed.wait_for(
            lambda: sum(not r.path.endswith(manifest) for r in state.requests) >= count,
            timeout=limit,
        ):
            raise AssertionError(f"upstream did not receive {count} requests within {limit} s")
