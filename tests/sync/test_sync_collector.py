"""The garbage collector during a sync: the heap from before it frozen, young collections
less often; both undone afterwards, and neither done where the application chose its own."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import anyio
import pytest

from stageline import Workspace
from stageline.sync._collector import DEFAULT_THRESHOLDS, SYNC_THRESHOLDS, collector_tuned

from ._plugin import ManifestFirstStage, Upstream
from ._support import sync


@pytest.fixture
def nothing_frozen() -> Iterator[None]:
    """The test starts with nothing frozen, the collector on with the default thresholds,
    and ends so."""
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()
    assert gc.get_threshold() == DEFAULT_THRESHOLDS
    yield
    gc.unfreeze()
    gc.enable()
    gc.set_threshold(*DEFAULT_THRESHOLDS)


class FreezeWatching(ManifestFirstStage):
    """The manifest's first stage, noting how many objects are frozen while it runs."""

    seen: list[int]
    thresholds: tuple[int, int, int]

    async def run(self) -> None:
        self.seen = [gc.get_freeze_count()]
        self.thresholds = gc.get_threshold()
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
    assert first.thresholds == SYNC_THRESHOLDS
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == DEFAULT_THRESHOLDS
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
    assert gc.get_threshold() == DEFAULT_THRESHOLDS


def test_overlapping_syncs_unfreeze_when_the_last_ends(nothing_frozen: None) -> None:
    """Two syncs in one process: the heap stays frozen until both have ended."""
    with collector_tuned():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with collector_tuned():
            assert gc.get_freeze_count() == frozen  # not frozen again
        assert gc.get_freeze_count() == frozen
        assert gc.get_threshold() == SYNC_THRESHOLDS
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == DEFAULT_THRESHOLDS


def test_what_the_application_chose_is_left_as_it_is(nothing_frozen: None) -> None:
    """Objects the application froze stay frozen after the sync, thresholds it set stay,
    a change it makes during the sync is kept, and a disabled collector is left alone."""
    gc.freeze()
    mine = gc.get_freeze_count()
    gc.set_threshold(2000, 20, 20)
    with collector_tuned():
        assert gc.get_freeze_count() == mine
        assert gc.get_threshold() == (2000, 20, 20)
    assert gc.get_freeze_count() == mine
    assert gc.get_threshold() == (2000, 20, 20)
    gc.unfreeze()
    gc.set_threshold(*DEFAULT_THRESHOLDS)
    with collector_tuned():
        assert gc.get_threshold() == SYNC_THRESHOLDS
        gc.set_threshold(5000, 10, 10)
    assert gc.get_threshold() == (5000, 10, 10)
    gc.set_threshold(*DEFAULT_THRESHOLDS)
    with collector_tuned():
        made_meanwhile = [[n] for n in range(100)]
        gc.freeze()  # the application freezes what it has now, the sync's heap with it
    assert gc.get_freeze_count() > 0  # left frozen
    assert made_meanwhile
    gc.unfreeze()
    gc.disable()
    with collector_tuned():
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == DEFAULT_THRESHOLDS
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
    assert gc.get_threshold() == DEFAULT_THRESHOLDS
