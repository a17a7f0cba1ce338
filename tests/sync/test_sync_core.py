"""The core cases of a whole sync, on SQLite and on PostgreSQL, asyncio and Trio."""

from __future__ import annotations

import anyio
import pytest

from stageline import Workspace
from stageline.models import DownloadPolicy, RepositoryVersion

from ._plugin import ManifestFirstStage, Upstream, sha256_of
from ._support import (
    content_artifacts,
    latest,
    leftover_temporary_files,
    paths_in,
    remote_artifacts,
    sync,
)

pytestmark = pytest.mark.anyio


def serve_three(upstream: Upstream) -> dict[str, str]:
    return {name: upstream.add(name, f"content of {name}".encode()) for name in ("a", "b", "c")}


async def test_a_first_sync_downloads_saves_and_versions_every_file(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """Three listed files end up stored, saved with their artifacts, and in version 1."""
    expected = serve_three(upstream)
    version = await sync(any_workspace, ManifestFirstStage(upstream.remote()))
    assert version is not None
    assert (version.number, version.content_count, version.added_count) == (1, 3, 3)
    assert await paths_in(any_workspace) == expected
    cas = await content_artifacts(any_workspace)
    for path, sha256 in expected.items():
        artifact = cas[path].artifact
        assert artifact is not None
        assert artifact.sha256 == sha256
        assert await any_workspace.storage.read_bytes(artifact) == f"content of {path}".encode()
    ras = await remote_artifacts(any_workspace)
    assert {path: [ra.url for ra in found] for path, found in ras.items()} == {
        path: [upstream.url(path)] for path in expected
    }
    assert leftover_temporary_files(any_workspace) == []


async def test_a_resync_without_upstream_changes_returns_none_and_downloads_nothing(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """The second sync of an unchanged upstream fetches only the manifest, makes no version."""
    serve_three(upstream)
    assert await sync(any_workspace, ManifestFirstStage(upstream.remote())) is not None
    assert sorted(upstream.file_requests()) == ["/repo/a", "/repo/b", "/repo/c"]
    assert await sync(any_workspace, ManifestFirstStage(upstream.remote())) is None
    assert sorted(upstream.file_requests()) == ["/repo/a", "/repo/b", "/repo/c"]
    assert (await latest(any_workspace)).number == 1


async def test_additive_keeps_what_upstream_dropped_and_mirror_removes_it(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """Without mirror a dropped file stays (no new version); with mirror it goes."""
    expected = serve_three(upstream)
    await sync(any_workspace, ManifestFirstStage(upstream.remote()))
    upstream.remove("b")
    assert await sync(any_workspace, ManifestFirstStage(upstream.remote())) is None
    assert await paths_in(any_workspace) == expected
    version = await sync(any_workspace, ManifestFirstStage(upstream.remote()), mirror=True)
    assert version is not None
    assert (version.number, version.removed_count, version.content_count) == (2, 1, 2)
    del expected["b"]
    assert await paths_in(any_workspace) == expected


async def test_content_changed_upstream_replaces_the_unit_at_its_path(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """A file with new bytes at the same path is a new unit that replaces the old one."""
    expected = serve_three(upstream)
    await sync(any_workspace, ManifestFirstStage(upstream.remote()))
    expected["a"] = upstream.add("a", b"new content of a")
    version = await sync(any_workspace, ManifestFirstStage(upstream.remote()))
    assert version is not None
    assert (version.added_count, version.removed_count, version.content_count) == (1, 1, 3)
    assert await paths_in(any_workspace) == expected
    artifact = (await content_artifacts(any_workspace))["a"].artifact
    assert artifact is not None
    assert await any_workspace.storage.read_bytes(artifact) == b"new content of a"


async def test_on_demand_records_where_files_are_and_a_later_immediate_sync_fetches_them(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """on_demand downloads nothing and saves remote artifacts; immediate then fills the files."""
    expected = serve_three(upstream)
    version = await sync(
        any_workspace, ManifestFirstStage(upstream.remote(policy=DownloadPolicy.ON_DEMAND))
    )
    assert version is not None
    assert version.content_count == 3
    assert upstream.file_requests() == []
    assert all(ca.artifact is None for ca in (await content_artifacts(any_workspace)).values())
    ras = await remote_artifacts(any_workspace)
    assert {path: (found[0].url, found[0].sha256) for path, found in ras.items()} == {
        path: (upstream.url(path), sha256) for path, sha256 in expected.items()
    }

    # The same content, now immediate: no new version, but every file is fetched and kept.
    assert await sync(any_workspace, ManifestFirstStage(upstream.remote())) is None
    assert sorted(upstream.file_requests()) == ["/repo/a", "/repo/b", "/repo/c"]
    cas = await content_artifacts(any_workspace)
    for path, sha256 in expected.items():
        artifact = cas[path].artifact
        assert artifact is not None
        assert artifact.sha256 == sha256
        assert await any_workspace.storage.exists(sha256)
    assert leftover_temporary_files(any_workspace) == []


async def test_streamed_downloads_nothing_and_keeps_no_file(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """A streamed remote's files are recorded as remote artifacts only."""
    expected = serve_three(upstream)
    version = await sync(
        any_workspace, ManifestFirstStage(upstream.remote(policy=DownloadPolicy.STREAMED))
    )
    assert version is not None
    assert version.content_count == 3
    assert upstream.file_requests() == []
    assert await paths_in(any_workspace) == expected
    assert all(ca.artifact is None for ca in (await content_artifacts(any_workspace)).values())
    assert set(await remote_artifacts(any_workspace)) == set(expected)
    for sha256 in expected.values():
        assert not await any_workspace.storage.exists(sha256)


async def test_a_unit_declared_again_with_the_same_bytes_is_not_downloaded_again(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """Two paths with identical bytes: one download, one artifact, two units."""
    upstream.add("one", b"same bytes")
    upstream.add("two", b"same bytes")
    version = await sync(any_workspace, ManifestFirstStage(upstream.remote()))
    assert version is not None
    assert version.content_count == 2
    assert len(upstream.file_requests()) == 1
    cas = await content_artifacts(any_workspace)
    one, two = cas["one"].artifact, cas["two"].artifact
    assert one is not None
    assert two is not None
    assert one.pk == two.pk
    assert one.sha256 == sha256_of(b"same bytes")


async def test_two_syncs_of_overlapping_repositories_at_once_both_succeed(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """Two repositories synced from one upstream at the same time share the saved units."""
    expected = serve_three(upstream)
    versions: dict[str, RepositoryVersion | None] = {}

    async def run(name: str) -> None:
        versions[name] = await sync(
            any_workspace, ManifestFirstStage(upstream.remote()), repository=name
        )

    async with any_workspace, anyio.create_task_group() as tg:
        for name in ("one", "two"):
            tg.start_soon(run, name)
    for name in ("one", "two"):
        version = versions[name]
        assert version is not None
        assert version.content_count == 3
        assert await paths_in(any_workspace, name) == expected
    one = await content_artifacts(any_workspace, "one")
    two = await content_artifacts(any_workspace, "two")
    assert {p: ca.content.pk for p, ca in one.items()} == {
        p: ca.content.pk for p, ca in two.items()
    }
