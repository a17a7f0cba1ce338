"""Custom pipelines: the default list, reordered query stages, an on-demand pipeline."""

from __future__ import annotations

import pytest

from stageline import DeclarativeVersion, Stage, Workspace
from stageline.models import DownloadPolicy, Repository
from stageline.stages import (
    ArtifactDownloader,
    ArtifactSaver,
    ContentAssociation,
    ContentSaver,
    ContentUnassociation,
    QueryExistingArtifacts,
    QueryExistingContents,
    RemoteArtifactSaver,
    ResolveContentFutures,
)
from stageline.store import NewVersion

from ._plugin import ManifestFirstStage, Upstream
from ._support import content_artifacts, paths_in, remote_artifacts

pytestmark = pytest.mark.anyio


class _Recording(DeclarativeVersion):
    """Records the stages of its pipeline."""

    stages: list[Stage]

    def pipeline_stages(self, new_version: NewVersion) -> list[Stage]:
        self.stages = super().pipeline_stages(new_version)
        return self.stages


@pytest.mark.parametrize("mirror", [False, True])
async def test_the_default_pipeline_is_in_pulp_order(
    workspace: Workspace, upstream: Upstream, mirror: bool
) -> None:
    """First stage, the eight default stages, and ContentUnassociation only when mirroring."""
    first = ManifestFirstStage(upstream.remote())
    dv = _Recording(first, Repository(name="files"), mirror, workspace=workspace)
    await dv.acreate()
    expected: list[type[Stage]] = [
        ManifestFirstStage,
        QueryExistingContents,
        QueryExistingArtifacts,
        ArtifactDownloader,
        ArtifactSaver,
        ContentSaver,
        RemoteArtifactSaver,
        ResolveContentFutures,
        ContentAssociation,
    ]
    if mirror:
        expected.append(ContentUnassociation)
    assert [type(stage) for stage in dv.stages] == expected
    assert dv.stages[0] is first


class _QueriesSwapped(DeclarativeVersion):
    def pipeline_stages(self, new_version: NewVersion) -> list[Stage]:
        stages = super().pipeline_stages(new_version)
        stages[1], stages[2] = stages[2], stages[1]
        assert isinstance(stages[1], QueryExistingArtifacts)
        return stages


async def test_swapped_query_stages_sync_the_same(workspace: Workspace, upstream: Upstream) -> None:
    """QueryExistingArtifacts before QueryExistingContents: same version, no re-download."""
    expected = {name: upstream.add(name, f"content of {name}".encode()) for name in ("a", "b")}
    remote = upstream.remote()
    first = _QueriesSwapped(
        ManifestFirstStage(remote), Repository(name="files"), workspace=workspace
    )
    version = await first.acreate()
    assert version is not None
    assert version.content_count == 2
    assert await paths_in(workspace) == expected
    # Files already saved (another repository) are found, not downloaded again.
    other = _QueriesSwapped(
        ManifestFirstStage(remote), Repository(name="other"), workspace=workspace
    )
    assert await other.acreate() is not None
    assert sorted(upstream.file_requests()) == ["/repo/a", "/repo/b"]
    assert await paths_in(workspace, "other") == expected


class _OnDemandOnly(DeclarativeVersion):
    """The on-demand pipeline: no QueryExistingArtifacts, ArtifactDownloader or ArtifactSaver."""

    def pipeline_stages(self, new_version: NewVersion) -> list[Stage]:
        dropped = (QueryExistingArtifacts, ArtifactDownloader, ArtifactSaver)
        return [s for s in super().pipeline_stages(new_version) if not isinstance(s, dropped)]


@pytest.mark.parametrize("mirror", [False, True])
async def test_a_pipeline_without_the_artifact_stages_syncs_on_demand(
    workspace: Workspace, upstream: Upstream, mirror: bool
) -> None:
    """Units are saved with deferred files and remote artifacts; nothing is downloaded."""
    expected = {name: upstream.add(name, f"content of {name}".encode()) for name in ("a", "b")}
    remote = upstream.remote(policy=DownloadPolicy.ON_DEMAND)
    dv = _OnDemandOnly(
        ManifestFirstStage(remote), Repository(name="files"), mirror, workspace=workspace
    )
    version = await dv.acreate()
    assert version is not None
    assert version.content_count == 2
    assert upstream.file_requests() == []
    assert await paths_in(workspace) == expected
    assert all(ca.artifact is None for ca in (await content_artifacts(workspace)).values())
    ras = await remote_artifacts(workspace)
    assert {path: found[0].url for path, found in ras.items()} == {
        path: upstream.url(path) for path in expected
    }
    # Again, unchanged: no version; then one file gone upstream.
    again = _OnDemandOnly(
        ManifestFirstStage(remote), Repository(name="files"), mirror, workspace=workspace
    )
    assert await again.acreate() is None
    upstream.remove("b")
    last = _OnDemandOnly(
        ManifestFirstStage(remote), Repository(name="files"), mirror, workspace=workspace
    )
    assert (await last.acreate() is None) is not mirror
    assert set(await paths_in(workspace)) == ({"a"} if mirror else {"a", "b"})
