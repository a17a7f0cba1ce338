"""ArtifactResourceBudget in whole syncs: caps what waits downloaded, ends at zero, never hangs.

What is "downloaded but not saved yet" is measured twice: by the budget itself (its peaks,
updated at every acquire) and independently, by a probe stage right after the downloader
that counts the files in the sync's temporary area each time a unit passes it. The first
stage declares the files without downloading metadata, so that the temporary area holds
only the files being synced.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stageline import DeclarativeVersion, HTTPStatusError, Stage, Workspace
from stageline.models import Remote, Repository
from stageline.stages import ArtifactDownloader, ArtifactResourceBudget
from stageline.store import NewVersion

from ..download._servers import LocalServer, stall, status
from ._plugin import IndexFirstStage, Upstream, file_unit, sha256_of
from ._support import latest, leftover_temporary_files, paths_in
from .test_sync_discovery import serve_tree

pytestmark = pytest.mark.anyio


class ListedFirstStage(Stage):
    """Declares one file unit per path the upstream serves, reading no metadata file."""

    def __init__(self, upstream: Upstream, paths: Sequence[str]) -> None:
        self.upstream = upstream
        self.remote: Remote = upstream.remote()
        self.paths = paths

    async def run(self) -> None:
        for path in self.paths:
            data = self.upstream.files[path]
            await self.put(file_unit(self.remote, path, sha256_of(data), len(data)))


def files_in(folder: Path) -> list[int]:
    """The sizes of the files under ``folder``, its areas' lock files aside (blocking).

    The saver moves files out of the area in worker threads while this lists it: a file
    gone between the listing and its ``stat`` has left, and is not counted.
    """
    if not folder.exists():
        return []
    sizes = []
    for path in folder.rglob("*"):
        if path.name == ".in-use":
            continue
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode):
            sizes.append(info.st_size)
    return sizes


class TemporaryAreaProbe(Stage):
    """Passes every item on, noting (files, bytes) in the temporary area at each one."""

    def __init__(self, temp_root: Path) -> None:
        self.temp_root = temp_root
        self.samples: list[tuple[int, int]] = []

    async def run(self) -> None:
        async for d in self.items():
            sizes = files_in(self.temp_root)
            self.samples.append((len(sizes), sum(sizes)))
            await self.put(d)


class ProbedVersion(DeclarativeVersion):
    """The default pipeline with a TemporaryAreaProbe right after the downloader."""

    probe: TemporaryAreaProbe

    def pipeline_stages(self, new_version: NewVersion) -> list[Stage]:
        stages = super().pipeline_stages(new_version)
        self.probe = TemporaryAreaProbe(self.storage.temp_root)
        at = next(i for i, s in enumerate(stages) if isinstance(s, ArtifactDownloader))
        stages.insert(at + 1, self.probe)
        return stages


def serve(upstream: Upstream, sizes: Sequence[int], tag: str = "") -> list[str]:
    """Serve one file per size (distinct bytes); return their paths."""
    paths = []
    for number, size in enumerate(sizes):
        path = f"f{number}"
        upstream.add(path, (f"{tag}{number}:".encode() + b"x" * size)[:size], listed=False)
        paths.append(path)
    return paths


def assert_within(
    samples: Sequence[tuple[int, int]], max_items: int | None, max_bytes: int | None
) -> None:
    """Each (files, bytes) sample keeps to the caps; one file alone may exceed max_bytes."""
    for files, size in samples:
        assert max_items is None or files <= max_items, (files, size)
        assert max_bytes is None or size <= max_bytes or files == 1, (files, size)


def assert_budget_kept(
    budget: ArtifactResourceBudget | None,
    max_items: int | None,
    max_bytes: int | None,
    sizes: Sequence[int],
) -> None:
    """The budget's own peaks keep to the caps, and it ends holding nothing.

    The peaks need not be simultaneous: the bytes may peak with one file larger than
    ``max_bytes``, held alone.
    """
    assert budget is not None
    assert (budget.pending_items, budget.pending_bytes) == (0, 0)
    assert max_items is None or budget.peak_items <= max_items
    assert max_bytes is None or budget.peak_bytes <= max(max_bytes, *sizes)


@pytest.mark.parametrize(
    ("max_items", "max_bytes"), [(2, None), (None, 40), (3, 60), (1, 1)], ids=str
)
async def test_the_budget_caps_what_waits_downloaded_and_ends_at_zero(
    workspace: Workspace, upstream: Upstream, max_items: int | None, max_bytes: int | None
) -> None:
    """Twelve files, saver batches of 5: within the caps at every moment, all synced."""
    sizes = [5 + n for n in range(12)]
    paths = serve(upstream, sizes)
    dv = ProbedVersion(
        ListedFirstStage(upstream, paths),
        Repository(name="files"),
        workspace=workspace,
        batch_size=5,
        max_pending_items=max_items,
        max_pending_bytes=max_bytes,
    )
    with anyio.fail_after(60):
        version = await dv.acreate()
    assert version is not None
    assert version.content_count == 12
    assert len(dv.probe.samples) == 12
    assert_within(dv.probe.samples, max_items, max_bytes)
    assert_budget_kept(dv.budget, max_items, max_bytes, sizes)
    assert dv.budget is not None
    assert dv.budget.peak_items >= 1


async def test_without_a_cap_there_is_no_budget_and_more_waits_at_once(
    workspace: Workspace, upstream: Upstream
) -> None:
    """The probe sees several files waiting without a budget (the caps above are real)."""
    paths = serve(upstream, [5 + n for n in range(12)])
    dv = ProbedVersion(
        ListedFirstStage(upstream, paths), Repository(name="files"), workspace=workspace
    )
    with anyio.fail_after(60):
        assert await dv.acreate() is not None
    assert dv.budget is None
    assert max(files for files, _size in dv.probe.samples) > 1


async def test_a_file_larger_than_max_bytes_still_syncs_alone(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """max_pending_bytes=10 and files of 100 bytes: each passes alone, both are synced."""
    paths = serve(upstream, [100, 100])
    dv = ProbedVersion(
        ListedFirstStage(upstream, paths),
        Repository(name="files"),
        workspace=any_workspace,
        max_pending_bytes=10,
    )
    with anyio.fail_after(30):
        assert await dv.acreate() is not None
    assert sorted(await paths_in(any_workspace)) == paths
    assert dv.budget is not None
    assert (dv.budget.peak_items, dv.budget.peak_bytes) == (1, 100)
    assert all(files <= 1 for files, _size in dv.probe.samples)


async def test_the_budget_ends_at_zero_after_a_download_error(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """A 404 fails the sync; what the budget held is released, no version is left."""
    paths = serve(upstream, [10, 10, 10, 10])
    upstream.server.route("/repo/f2", status(404))
    dv = DeclarativeVersion(
        ListedFirstStage(upstream, paths),
        Repository(name="files"),
        workspace=any_workspace,
        max_pending_items=3,
    )
    with anyio.fail_after(30), pytest.raises(HTTPStatusError):
        await dv.acreate()
    assert dv.budget is not None
    assert (dv.budget.pending_items, dv.budget.pending_bytes) == (0, 0)
    assert (await latest(any_workspace)).number == 0


async def test_the_budget_ends_at_zero_after_cancellation(
    workspace: Workspace, upstream: Upstream
) -> None:
    """Cancelled while a body arrives (units held): the budget ends holding nothing."""
    paths = serve(upstream, [10, 100_000])
    upstream.server.route("/repo/f1", stall(upstream.files["f1"], send=1000))
    dv = DeclarativeVersion(
        ListedFirstStage(upstream, paths),
        Repository(name="files"),
        workspace=workspace,
        max_pending_items=5,
    )
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(dv.acreate)
            assert await anyio.to_thread.run_sync(upstream.server.state.body_started.wait, 10)
            assert dv.budget is not None
            assert dv.budget.pending_items >= 1
            tg.cancel_scope.cancel()
    assert (dv.budget.pending_items, dv.budget.pending_bytes) == (0, 0)
    assert leftover_temporary_files(workspace) == []


async def test_a_skipped_unit_releases_its_share(workspace: Workspace, upstream: Upstream) -> None:
    """max_pending_items=1 with a unit that fails: it is skipped, the rest still syncs."""
    paths = serve(upstream, [10, 10, 10])
    upstream.server.route("/repo/f0", status(404))
    dv = DeclarativeVersion(
        ListedFirstStage(upstream, paths),
        Repository(name="files"),
        workspace=workspace,
        on_error="skip",
        max_pending_items=1,
    )
    with anyio.fail_after(30):
        assert await dv.acreate() is not None
    assert sorted(await paths_in(workspace)) == ["f1", "f2"]
    assert [s.urls for s in dv.skipped] == [(upstream.url("f0"),)]
    assert dv.budget is not None
    assert dv.budget.pending_items == 0


def test_limits_are_checked_when_the_sync_is_made(workspace: Workspace) -> None:
    """max_pending_bytes=0 or a str for max_pending_items fail at once, naming the limit."""
    first = ListedFirstStage.__new__(ListedFirstStage)
    with pytest.raises(ValueError, match="max_bytes"):
        DeclarativeVersion(first, Repository(name="r"), workspace=workspace, max_pending_bytes=0)
    with pytest.raises(ValueError, match="max_items"):
        DeclarativeVersion(
            first,
            Repository(name="r"),
            workspace=workspace,
            max_pending_items="3",  # type: ignore[arg-type]
        )


class _Examples:
    """Numbers the examples of a property, for fresh folders and distinct bytes."""

    count = 0


@pytest.mark.slow
@given(
    sizes=st.lists(st.integers(1, 60), min_size=1, max_size=8),
    max_items=st.none() | st.integers(1, 4),
    max_bytes=st.none() | st.integers(1, 120),
    batch_size=st.integers(1, 6),
    maxsize=st.integers(0, 3),
    max_concurrent_content=st.integers(1, 3),
)
# Each example makes its own workspace folder and files (numbered), so the fixtures
# shared by the examples (the server, tmp_path) are never reused in a way that matters.
@settings(
    max_examples=12,
    deadline=None,
    # (A list of its own replaces the profile's, too_slow included: see tests/conftest.py.)
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_no_deadlock_and_no_excess_whatever_the_limits_and_batches(
    server: LocalServer,
    tmp_path: Path,
    sizes: list[int],
    max_items: int | None,
    max_bytes: int | None,
    batch_size: int,
    maxsize: int,
    max_concurrent_content: int,
) -> None:
    """Any caps, batch sizes and buffers: the sync ends, all synced, within the caps."""
    if max_items is None and max_bytes is None:
        max_items = 1
    _Examples.count += 1
    number = _Examples.count
    upstream = Upstream(server, prefix=f"/example{number}/")
    paths = serve(upstream, sizes, tag=f"e{number}-")
    home = tmp_path / f"example{number}"
    await anyio.Path(home).mkdir()
    workspace = Workspace(home)
    options: dict[str, Any] = {
        "batch_size": batch_size,
        "maxsize": maxsize,
        "max_concurrent_content": max_concurrent_content,
        "max_pending_items": max_items,
        "max_pending_bytes": max_bytes,
    }
    dv = ProbedVersion(
        ListedFirstStage(upstream, paths), Repository(name="files"), workspace=workspace, **options
    )
    with anyio.fail_after(30):
        version = await dv.acreate()
    assert version is not None
    assert version.content_count == len(paths)
    assert_within(dv.probe.samples, max_items, max_bytes)
    assert_budget_kept(dv.budget, max_items, max_bytes, sizes)


@pytest.mark.parametrize("batch_size", [1, 3, 500])
async def test_multi_level_discovery_through_a_budget_of_one(
    workspace: Workspace, upstream: Upstream, batch_size: int
) -> None:
    """A first stage awaiting its indexes never waits on the budget: all nine units sync."""
    serve_tree(upstream)
    first = IndexFirstStage(upstream.remote(), workspace.storage)
    dv = DeclarativeVersion(
        first,
        Repository(name="files"),
        workspace=workspace,
        batch_size=batch_size,
        max_pending_items=1,
        max_pending_bytes=1,
    )
    with anyio.fail_after(30):
        version = await dv.acreate()
    assert version is not None
    assert version.content_count == 9
    assert first.read == ["root.idx", "sub1.idx", "sub2.idx", "deep.idx"]
    assert dv.budget is not None
    assert (dv.budget.peak_items, dv.budget.pending_items) == (1, 0)
