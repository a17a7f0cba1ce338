"""``stageline export`` in a subprocess: files and manifest written, errors on one line."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from stageline import Workspace
from stageline.models import DownloadPolicy

from ..content_app._support import wait_for_requests
from ..sync._on_demand_support import FILES, gated, synced
from ..sync._plugin import Upstream, sha256_of
from ._cli_support import ROOT, STAGELINE, run_cli

pytestmark = pytest.mark.anyio


async def test_export_of_an_on_demand_version(
    workspace: Workspace, upstream: Upstream, home: Path, tmp_path: Path, cli_backend: str
) -> None:
    """The files are fetched and written with a manifest, on either --backend; --json
    summarises it."""
    await synced(workspace, upstream, DownloadPolicy.ON_DEMAND)
    target = tmp_path / "export"
    result = await run_cli(
        "export", "files", str(target), "--home", str(home), "--json", "--backend", cli_backend
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary == {
        "repository": "files",
        "version": 1,
        "directory": str(target),
        "manifest": str(target / "PULP_MANIFEST"),
        "files": 3,
        "bytes": sum(map(len, FILES.values())),
        "fetched": 3,
    }
    for path, data in FILES.items():
        assert await anyio.Path(target / path).read_bytes() == data
    manifest = await anyio.Path(target / "PULP_MANIFEST").read_text()
    assert manifest.splitlines() == [
        f"{path},{sha256_of(data)},{len(data)}" for path, data in sorted(FILES.items())
    ]
    again = await run_cli("export", "files", str(target), "--home", str(home), "--version", "1")
    assert again.returncode == 1
    error = again.stderr.decode().strip()
    assert error.startswith(f"Error: cannot export into {target}: the folder is not empty")
    assert "\n" not in error
    overwritten = await run_cli("export", "files", str(target), "--home", str(home), "--overwrite")
    assert overwritten.returncode == 0, overwritten.stderr
    assert overwritten.stdout.decode().startswith("Exported version 1 of 'files': 3 files")


async def test_export_of_an_unknown_repository_or_version(
    workspace: Workspace, upstream: Upstream, home: Path, tmp_path: Path
) -> None:
    """An unknown repository or version is a one-line error and exit code 1."""
    await synced(workspace, upstream, DownloadPolicy.IMMEDIATE)
    for args, message in [
        (["nope"], "Error: there is no repository named 'nope'"),
        (["files", "--version", "9"], "Error: repository 'files' has no version 9"),
    ]:
        result = await run_cli(
            "export", *args[:1], str(tmp_path / "x"), *args[1:], "--home", str(home)
        )
        assert result.returncode == 1
        error = result.stderr.decode().strip()
        assert error.startswith(message), error
        assert "\n" not in error


async def test_sigint_during_an_export_leaves_whole_files_and_no_manifest(
    workspace: Workspace, upstream: Upstream, home: Path, tmp_path: Path, cli_backend: str
) -> None:
    """Ctrl-C while a file is being fetched ends the export with exit code 130, on either
    --backend: no temporary file, no manifest."""
    await synced(workspace, upstream, DownloadPolicy.ON_DEMAND)
    gate = threading.Event()
    for path, data in FILES.items():
        upstream.server.route(f"/repo/{path}", gated(data, gate))
    target = tmp_path / "export"
    export = ["export", "files", str(target), "--home", str(home), "--backend", cli_backend]
    command = [*STAGELINE, *export]
    with anyio.fail_after(120):
        async with await anyio.open_process(command, cwd=ROOT) as process:
            try:
                await anyio.to_thread.run_sync(wait_for_requests, upstream, 1, 60.0)
                process.send_signal(signal.SIGINT)
                code = await process.wait()
            finally:
                gate.set()
                if process.returncode is None:
                    process.kill()
            assert process.stderr is not None
            error = (await process.stderr.receive()).decode()
            assert code == 130, error
            assert error.startswith(f"Interrupted: {target} holds the files written so far")
    left = [path.name for path in await anyio.to_thread.run_sync(sorted, target.rglob("*"))]
    assert "PULP_MANIFEST" not in left
    assert not [name for name in left if name.endswith(".tmp")]
