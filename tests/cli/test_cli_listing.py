"""``stageline repository list|show`` and ``stageline content list`` in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stageline import Workspace
from stageline.models import DownloadPolicy

from ..sync._on_demand_support import FILES, synced
from ..sync._plugin import ManifestFirstStage, Upstream, sha256_of
from ..sync._support import sync
from ._cli_support import run_cli

pytestmark = pytest.mark.anyio

SECRETS = {
    "username": "someone",
    "password": "hunter2-secret",
    "headers": {"X-Token": "tok-secret"},
}


async def two_versions(workspace: Workspace, upstream: Upstream) -> None:
    """Version 1: FILES on demand, from a remote with secrets; version 2 (a mirror sync)
    replaces "a" by "new"."""
    await synced(workspace, upstream, DownloadPolicy.ON_DEMAND, **SECRETS)
    upstream.remove("a")
    upstream.add("new", b"new data")
    remote = upstream.remote(policy=DownloadPolicy.ON_DEMAND, **SECRETS)
    assert await sync(workspace, ManifestFirstStage(remote), mirror=True) is not None


def assert_no_secret(*outputs: bytes) -> None:
    for output in outputs:
        assert b"hunter2-secret" not in output
        assert b"tok-secret" not in output


async def test_repository_list(workspace: Workspace, upstream: Upstream, home: Path) -> None:
    """The repositories are listed with their latest version and unit count, as a table or
    as JSON."""
    empty = await run_cli("repository", "list", "--home", str(home), "--json")
    assert (empty.returncode, json.loads(empty.stdout)) == (0, [])
    await two_versions(workspace, upstream)
    result = await run_cli("repository", "list", "--home", str(home), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"name": "files", "description": "", "latest_version": 2, "content_count": 3}
    ]
    table = await run_cli("repository", "list", "--home", str(home))
    assert table.stdout.decode().splitlines() == [
        "NAME   LATEST  UNITS  DESCRIPTION",
        "files  2       3",
    ]


async def test_repository_show_masks_the_remote_secrets(
    workspace: Workspace, upstream: Upstream, home: Path
) -> None:
    """Each version's added, removed and total counts are shown, and the remote with its
    password and header values masked, in the table and in JSON."""
    await two_versions(workspace, upstream)
    result = await run_cli("repository", "show", "files", "--home", str(home), "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["latest_version"] == 2
    assert [(v["number"], v["added"], v["removed"], v["total"]) for v in shown["versions"]] == [
        (0, 0, 0, 0),
        (1, 3, 0, 3),
        (2, 1, 1, 3),
    ]
    [remote] = shown["remotes"]
    assert remote["name"] == "upstream"
    assert remote["url"] == upstream.url("")
    assert remote["policy"] == "on_demand"
    assert (remote["username"], remote["password"]) == ("someone", "[secure]")
    assert remote["headers"] == {"X-Token": "[secure]"}
    text = await run_cli("repository", "show", "files", "--home", str(home))
    assert text.returncode == 0, text.stderr
    lines = text.stdout.decode().splitlines()
    assert lines[0] == "Repository files"
    assert "VERSION  ADDED  REMOVED  TOTAL" in lines
    assert "2        1      1        3" in lines
    assert "  password: [secure]" in lines
    assert_no_secret(result.stdout, result.stderr, text.stdout, text.stderr)


async def test_content_list(workspace: Workspace, upstream: Upstream, home: Path) -> None:
    """A version's files are listed in path order with size, sha256 and whether they are
    downloaded; --version picks an older version."""
    await two_versions(workspace, upstream)
    result = await run_cli("content", "list", "files", "--home", str(home), "--json")
    assert result.returncode == 0, result.stderr
    files = {**{p: d for p, d in FILES.items() if p != "a"}, "new": b"new data"}
    assert json.loads(result.stdout) == [
        {
            "relative_path": path,
            "type": "tests.sync.file",
            "size": len(data),
            "sha256": sha256_of(data),
            "downloaded": False,
        }
        for path, data in sorted(files.items())
    ]
    old = await run_cli("content", "list", "files", "--version", "1", "--home", str(home))
    assert old.returncode == 0, old.stderr
    assert old.stdout.decode().splitlines() == [
        f"{path}\t{len(data)}\t{sha256_of(data)}\ton demand" for path, data in sorted(FILES.items())
    ]


async def test_unknown_repository_or_version_is_a_one_line_error(
    workspace: Workspace, upstream: Upstream, home: Path
) -> None:
    """An unknown repository or version is a one-line error and exit code 1."""
    await synced(workspace, upstream, DownloadPolicy.ON_DEMAND)
    for args, message in [
        (["repository", "show", "nope"], "Error: there is no repository named 'nope'"),
        (["content", "list", "nope"], "Error: there is no repository named 'nope'"),
        (
            ["content", "list", "files", "--version", "9"],
            "Error: repository 'files' has no version 9",
        ),
    ]:
        result = await run_cli(*args, "--home", str(home))
        assert result.returncode == 1, args
        error = result.stderr.decode().strip()
        assert error.startswith(message), error
        assert "\n" not in error
