"""``stageline serve`` in a subprocess: it prints its url, serves files, and stops on SIGINT."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import anyio
import httpx
import pytest

from stageline import Workspace
from stageline.models import DownloadPolicy

from ..sync._on_demand_support import FILES, synced
from ..sync._plugin import Upstream
from ._cli_support import ROOT, STAGELINE, run_cli

pytestmark = pytest.mark.anyio


async def test_serve_serves_files_and_stops_cleanly_on_sigint(
    workspace: Workspace, upstream: Upstream, home: Path, cli_backend: str
) -> None:
    """The command prints the url it listens on (127.0.0.1), serves an on-demand file and an
    index, and exits 0 on SIGINT, on either --backend."""
    await synced(workspace, upstream, DownloadPolicy.ON_DEMAND)
    command = [*STAGELINE, "serve", "--home", str(home), "--port", "0", "--backend", cli_backend]
    with anyio.fail_after(60):
        async with await anyio.open_process(command, cwd=ROOT) as process:
            assert process.stdout is not None
            line = b""
            while b"\n" not in line:
                line += await process.stdout.receive()
            match = re.search(r"http://127\.0\.0\.1:\d+/", line.decode())
            assert match is not None, line
            async with httpx.AsyncClient(base_url=match.group(0)) as client:
                response = await client.get("/files/latest/dir/b")
                assert (response.status_code, response.content) == (200, FILES["dir/b"])
                index = await client.get("/files/1/")
                assert '<a href="./dir/">dir/</a>' in index.text
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
            rest = b""
            try:
                while True:
                    rest += await process.stdout.receive()
            except anyio.EndOfStream:
                pass
            assert b"Stopped." in rest
    assert len(upstream.server.requests_for("/repo/dir/b")) == 1


async def test_serve_on_a_port_in_use_fails_with_one_line(home: Path) -> None:
    """A port that cannot be listened on is a one-line error and exit code 1."""
    with anyio.fail_after(30):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        async with listener:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            result = await run_cli("serve", "--home", str(home), "--port", str(port))
    assert result.returncode == 1
    error = result.stderr.decode().strip()
    assert error.startswith(f"Error: cannot listen on 127.0.0.1 port {port}:")
    assert "\n" not in error
