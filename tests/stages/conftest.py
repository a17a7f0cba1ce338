"""Fixtures for the stage tests (shared with the sync tests, see tests/sync/fixtures.py).

This folder has no ``__init__.py``: ``tests/stages.py`` (the engine tests' stages) owns
the module name ``tests.stages``.
"""

from tests.sync.fixtures import (  # noqa: F401  (fixtures are found by name)
    _collect_garbage,
    no_backoff,
    server,
    storage,
    store,
    upstream,
)
