"""The shim's tests run on asyncio only: stageline_compat IS the asyncio-era API.

Its stages may use asyncio inside ``run()``, its futures are ``asyncio.Future``s and its
``create_pipeline`` refuses another event loop (one test checks that refusal under Trio,
by asking for that backend itself). The sync fixtures (a local HTTP server, a workspace on
a SQLite file) are shared with tests/sync.
"""

from __future__ import annotations

import pytest

from ..sync.fixtures import (  # noqa: F401  (fixtures are found by name)
    _collect_garbage,
    home,
    no_backoff,
    server,
    upstream,
    workspace,
)


@pytest.fixture
def anyio_backend() -> str:
    """Run each ``@pytest.mark.anyio`` test of the shim on asyncio only."""
    return "asyncio"
