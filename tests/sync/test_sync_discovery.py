"""Multi-level discovery through the whole default pipeline, at any batch size."""

from __future__ import annotations

import anyio
import pytest

from stageline import Workspace
from stageline.models import DownloadPolicy

from ._plugin import IndexFirstStage, SyncFile, SyncIndex, Upstream
from ._support import content_artifacts, leftover_temporary_files, sync, units_in

pytestmark = pytest.mark.anyio


def serve_tree(upstream: Upstream) -> None:
    """root.idx lists a file and two indexes; sub1.idx lists a file and a third index."""
    for name in ("f1", "f2", "f3", "f4", "f5"):
        upstream.add(name, f"file {name}".encode(), listed=False)
    upstream.add_index("deep.idx", [upstream.file_line("f5")], listed=False)
    upstream.add_index(
        "sub1.idx", [upstream.file_line("f2"), upstream.index_line("deep.idx")], listed=False
    )
    upstream.add_index(
        "sub2.idx", [upstream.file_line("f3"), upstream.file_line("f4")], listed=False
    )
    upstream.add_index(
        "root.idx",
        [
            upstream.file_line("f1"),
            upstream.index_line("sub1.idx"),
            upstream.index_line("sub2.idx"),
        ],
    )


@pytest.mark.parametrize("batch_size", [1, 2, 500])
@pytest.mark.parametrize("policy", [DownloadPolicy.IMMEDIATE, DownloadPolicy.ON_DEMAND])
async def test_indexes_are_awaited_read_and_their_children_synced(
    workspace: Workspace, upstream: Upstream, batch_size: int, policy: DownloadPolicy
) -> None:
    """Every index is downloaded (even on demand), read from storage, its children synced."""
    serve_tree(upstream)
    first = IndexFirstStage(upstream.remote(policy=policy), workspace.storage)
    with anyio.fail_after(30):
        version = await sync(workspace, first, batch_size=batch_size)
    assert version is not None
    assert version.content_count == 9
    assert first.read == ["root.idx", "sub1.idx", "sub2.idx", "deep.idx"]
    units = await units_in(workspace)
    assert sorted(u.relative_path for u in units if isinstance(u, SyncIndex)) == [
        "deep.idx",
        "root.idx",
        "sub1.idx",
        "sub2.idx",
    ]
    assert sorted(u.relative_path for u in units if isinstance(u, SyncFile)) == [
        "f1",
        "f2",
        "f3",
        "f4",
        "f5",
    ]
    cas = await content_artifacts(workspace)
    for path, ca in cas.items():
        # Indexes are always downloaded; files only when the policy is immediate.
        downloaded = path.endswith(".idx") or policy is DownloadPolicy.IMMEDIATE
        assert (ca.artifact is not None) is downloaded, path
    requested = sorted(upstream.file_requests())
    assert [p for p in requested if p.endswith(".idx")] == [
        "/repo/deep.idx",
        "/repo/root.idx",
        "/repo/sub1.idx",
        "/repo/sub2.idx",
    ]
    assert leftover_temporary_files(workspace) == []


async def test_a_resync_reads_the_saved_indexes_without_downloading_them(
    workspace: Workspace, upstream: Upstream
) -> None:
    """Indexes already saved are found by digest and read from the storage again."""
    serve_tree(upstream)
    await sync(workspace, IndexFirstStage(upstream.remote(), workspace.storage))
    before = len(upstream.file_requests())
    again = IndexFirstStage(upstream.remote(), workspace.storage)
    assert await sync(workspace, again) is None
    assert again.read == ["root.idx", "sub1.idx", "sub2.idx", "deep.idx"]
    assert len(upstream.file_requests()) == before
