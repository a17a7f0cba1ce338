"""Helpers of the on-demand tests: a synced deferred repository, a gated server route."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from stageline import Workspace
from stageline.models import DownloadPolicy
from stageline.sync import ContentFetcher

from ..download._servers import Behaviour, _Handler
from ._plugin import ManifestFirstStage, Upstream
from ._support import sync

FILES = {name: f"content of {name}".encode() for name in ("a", "dir/b", "dir/sub/c")}


async def synced(
    workspace: Workspace,
    upstream: Upstream,
    policy: DownloadPolicy = DownloadPolicy.ON_DEMAND,
    **remote_settings: object,
) -> None:
    """Serve FILES and sync them into repository "files" with ``policy``."""
    for path, data in FILES.items():
        upstream.add(path, data)
    version = await sync(
        workspace, ManifestFirstStage(upstream.remote(policy=policy, **remote_settings))
    )
    assert version is not None


async def read_file(
    fetcher: ContentFetcher, path: str, *, repository: str = "files", version: int | None = None
) -> tuple[bytes, str | None]:
    """The bytes of ``path`` and the url they were fetched from (None: from storage)."""
    async with fetcher.open_path(repository, version, path) as opened:
        return await opened.read(), opened.fetched_from


def gated(data: bytes, gate: threading.Event, *, code: int = 200) -> Behaviour:
    """Answer ``data`` (with status ``code``) once ``gate`` is set, or the server stops."""

    def run(handler: _Handler) -> None:
        stop = handler.server.state.stop
        while not gate.wait(0.02) and not stop.is_set():
            pass
        handler.send_body(data, code)

    return run


def wait_for_a_file(area: Path, limit: float = 10.0) -> None:
    """Block until a download has written a file in ``area`` (a blocking call, for a
    worker thread: the writer is in other threads, with no event to wait for)."""
    deadline = time.monotonic() + limit
    while not files_in_area(area):
        if time.monotonic() > deadline:
            raise AssertionError(f"no download wrote a file in {area} within {limit} s")
        time.sleep(0.005)


def files_in_area(area: Path) -> list[str]:
    """What downloads left in a temporary area (its lock file aside); a blocking call."""
    return sorted(p.name for p in area.rglob("*") if p.name != ".in-use")
