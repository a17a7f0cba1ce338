"""The garbage collector during a sync: the heap that was there before it, frozen."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["heap_frozen"]

_lock = threading.Lock()
_syncs = 0
_froze = False


@contextmanager
def heap_frozen() -> Iterator[None]:
    """Freeze what the collector tracks for the block (``gc.freeze()``); unfreeze after.

    Python's full collections walk every tracked object of the process: in a sync, mostly
    the imported libraries and whatever the application holds, which outlive the sync.
    Over a sync of 100 000 units they took ~6.6 µs per unit, ~0.6 with that heap frozen.
    Objects the sync makes are collected as usual; what was frozen goes back to the
    oldest generation when the last sync running in the process ends. Nothing is done
    when the collector is disabled or the application froze objects itself (as the
    ``stageline`` command does for its whole run).
    """
    global _syncs, _froze
    with _lock:
        _syncs += 1
        if _syncs == 1 and gc.isenabled() and gc.get_freeze_count() == 0:
            gc.freeze()
            _froze = True
    try:
        yield
    finally:
        with _lock:
            _syncs -= 1
            if _syncs == 0 and _froze:
                _froze = False
                gc.unfreeze()
