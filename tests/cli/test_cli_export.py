"""``stageline export`` in a subprocess: files and manifest written, errors on one line."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from stageline import Workspace
from stageline.models import DownloadPolicy

from ..sync._on_demand_support import FILES, synced
from ..sync._plugin import Upstream, sha256_of
from ._cli_support import run_cli

pytestmark = pytest.mark.anyio


async def test_export_of_an_on_demand_version(
    workspace: Workspace, upstream: Upstream, home: Path, tmp_path: Path
) -> None:
    """The files are fetched and written with a manifest; --json summarises it."""
    await synced(workspace, upstream, DownloadPolicy.ON_DEMAND)
    target = tmp_path / "export"
    result = await run_cli("export", "files", str(target), "--home", str(home), "--json")
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
