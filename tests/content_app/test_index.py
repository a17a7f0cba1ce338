"""Folder listings read page by page: the same entries whatever the page size."""

from __future__ import annotations

import pytest

from stageline import Workspace
from stageline.content_app._index import Entry, folder_entries
from stageline.models import DownloadPolicy
from stageline.sync import open_content_fetcher

from ..sync._plugin import ManifestFirstStage, Upstream
from ..sync._support import sync

pytestmark = pytest.mark.anyio

PATHS = ["a", "b/1", "b/2", "b/3", "b/c/1", "b/c/2", "b.txt", "c", "d/x", "d/y/z", "e", "f/g"]


def expected(folder: str) -> list[Entry]:
    """The entries of ``folder`` computed from PATHS, in code point order of their paths."""
    prefix = f"{folder}/" if folder else ""
    entries: dict[str, Entry] = {}
    for path in sorted(p for p in PATHS if p.startswith(prefix)):
        name, slash, _ = path[len(prefix) :].partition("/")
        key = name + ("/" if slash else "")
        entries.setdefault(key, Entry(name, folder=True) if slash else Entry(name, size=1))
    return list(entries.values())


async def test_folder_entries_are_the_same_for_every_page_size(
    workspace: Workspace, upstream: Upstream
) -> None:
    """Sub-folders are listed once and files with their announced size, in path order, for
    page sizes that split sub-folders across pages."""
    for path in PATHS:
        upstream.add(path, b"x")
    remote = upstream.remote(policy=DownloadPolicy.ON_DEMAND)
    assert await sync(workspace, ManifestFirstStage(remote)) is not None
    async with open_content_fetcher(workspace) as fetcher:
        version = await fetcher.find_version("files")
        for folder in ["", "b", "b/c", "d", "d/y", "nothing"]:
            for page_size in [1, 2, 3, 5, 1000]:
                listed = [
                    entry
                    async for page in folder_entries(
                        fetcher.store, version, folder, page_size=page_size
                    )
                    for entry in page
                ]
                want = [
                    Entry(e.name, folder=e.folder, size=e.size, deferred=not e.folder)
                    for e in expected(folder)
                ]
                assert listed == want, (folder, page_size)
