"""The garbage collector during a sync: the heap from before it frozen, fewer young passes."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DEFAULT_THRESHOLDS", "SYNC_THRESHOLDS", "collector_tuned"]

#: The interpreter's default collection thresholds (``gc.get_threshold()``).
DEFAULT_THRESHOLDS = (700, 10, 10)

#: The thresholds while a sync runs: a young collection every 30 000 net allocations of
#: tracked objects rather than 700.
SYNC_THRESHOLDS = (30000, 10, 10)

_lock = threading.Lock()
_syncs = 0
_froze = False
_frozen = 0  # how many objects were frozen, right after the freeze
_raised = False


@contextmanager
def collector_tuned() -> Iterator[None]:
    """Tune the garbage collector for the block (a sync); put it back when the last ends.

    Two changes, each made only when the application has not made its own:

    - What the collector tracks is frozen (``gc.freeze()``), unless objects are frozen
      already. Full collections walked every tracked object of the process: in a sync,
      mostly the imported libraries and what the application holds, which outlive it;
      over a sync of 100 000 units they took 7-8 µs per unit, 0.7-1 with that heap
      frozen. Objects the sync makes are collected as usual; what was frozen goes back
      to the oldest generation afterwards.
    - The young generation is collected every 30 000 net allocations of tracked objects
      instead of 700, when the thresholds are the interpreter's defaults. A sync's
      objects mostly die by reference counting, but a batch of 500 units alive in a
      stage crossed 700 all the time: ~1 000 young collections (and ~100 middle ones)
      per 100 000 units, 5-8 µs per unit, against under 10 young collections on_demand
      and ~30 in a re-sync at 7 000 (0.2 and 2 µs per unit). With batches of 1 000 the
      re-sync still spent 5-8 % of its time collecting at 7 000; 30 000 took 3-9 % off
      the time per unit of both syncs (back-to-back runs, docs/benchmarks.md).

    Nothing is done while the collector is disabled. Several syncs of one process share
    the changes: they are undone when the last one ends, each only if it is still what
    was set (an application that changed the thresholds or froze more objects meanwhile
    keeps what it did).
    """
    global _syncs, _froze, _frozen, _raised
    with _lock:
        _syncs += 1
        if _syncs == 1 and gc.isenabled():
            if gc.get_freeze_count() == 0:
                gc.freeze()
                _froze = True
                _frozen = gc.get_freeze_count()
            if gc.get_threshold() == DEFAULT_THRESHOLDS:
                gc.set_threshold(*SYNC_THRESHOLDS)
                _raised = True
    try:
        yield
    finally:
        with _lock:
            _syncs -= 1
            if _syncs == 0:
                if _froze:
                    _froze = False
                    # Frozen objects only die off, so more of them than were frozen means
                    # the application froze some meanwhile: then they all stay frozen.
                    if gc.get_freeze_count() <= _frozen:
                        gc.unfreeze()
                if _raised:
                    _raised = False
                    if gc.get_threshold() == SYNC_THRESHOLDS:
                        gc.set_threshold(*DEFAULT_THRESHOLDS)
