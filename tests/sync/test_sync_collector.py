"""The garbage collector during a sync: the heap from before it is frozen, then unfrozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import anyio
import pytest

from stageline import Workspace
from stageline.sync._collector import heap_frozen

from ._plugin import ManifestFirstStage, Upstream
from ._support import sync


@pytest.fixture
def nothing_frozen() -> Iterator[None]:
    """The test starts with nothing frozen and the collector on, and ends so."""
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()
    yield
    gc.unfreeze()
    gc.enable()


class FreezeWatching(ManifestFirstStage):
    """The manifest's first stage, noting how many objects are frozen while it runs."""

    seen: list[int]

    async def run(self) -> None:
        self.seen = [gc.get_freeze_count()]
        await super().run()


@pytest.mark.anyio
async def test_the_heap_from_before_a_sync_is_frozen_while_it_runs(
    workspace: Workspace, upstream: Upstream, nothing_frozen: None
) -> None:
    """Full collections skip what lived before the sync; afterwards nothing is frozen."""
    upstream.add("a", b"content of a")
    here = object()  # lives from before the sync: frozen with the rest while it runs
    first = FreezeWatching(upstream.remote())
    version = await sync(workspace, first)
    assert version is not None
    assert first.seen[0] > 0
    assert gc.get_freeze_count() == 0
    assert here is not None


class Failing(ManifestFirstStage):
    """A first stage that fails after its first unit."""

    async def run(self) -> None:
        await super().run()
        raise RuntimeError("the first stage failed")


@pytest.mark.anyio
async def test_a_failed_sync_unfreezes_too(
    workspace: Workspace, upstream: Upstream, nothing_frozen: None
) -> None:
    """A sync whose stage fails leaves nothing frozen."""
    upstream.add("a", b"content of a")
    with pytest.raises(RuntimeError, match="first stage failed"):
        await sync(workspace, Failing(upstream.remote()))
    assert gc.get_freeze_count() == 0


def test_overlapping_syncs_unfreeze_when_the_last_ends(nothing_frozen: None) -> None:
    """Two syncs in one process: the heap stays frozen until both have ended."""
    with heap_frozen():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with heap_frozen():
            assert gc.get_freeze_count() == frozen  # not frozen again
        assert gc.get_freeze_count() == frozen
    assert gc.get_freeze_count() == 0


def test_an_application_that_froze_objects_is_left_as_it_is(nothing_frozen: None) -> None:
    """Objects the application froze stay frozen after the sync; a disabled collector is
    left disabled and nothing is frozen for it."""
    gc.freeze()
    mine = gc.get_freeze_count()
    with heap_frozen():
        assert gc.get_freeze_count() == mine
    assert gc.get_freeze_count() == mine
    gc.unfreeze()
    gc.disable()
    with heap_frozen():
        assert gc.get_freeze_count() == 0
        assert not gc.isenabled()
    assert gc.get_freeze_count() == 0


@pytest.mark.anyio
async def test_a_cancelled_sync_unfreezes_too(
    workspace: Workspace, upstream: Upstream, nothing_frozen: None
) -> None:
    """Cancelled while it runs, the sync leaves nothing frozen."""
    upstream.add("a", b"content of a")
    with anyio.CancelScope() as scope:

        class Cancelling(ManifestFirstStage):
            async def run(self) -> None:
                scope.cancel()
                await anyio.sleep(5)

        await sync(workspace, Cancelling(upstream.remote()))
    assert scope.cancelled_caught
    assert gc.get_freeze_count() == 0
