"""Fixtures for the CLI tests (see tests/sync/fixtures.py).

A CLI test runs the command in a subprocess, which picks its own event loop with
``--backend`` (asyncio by default): the backend the test itself runs on only drives that
subprocess and prepares its data with the library, whose own tests cover both backends.
So the async CLI tests run once, on asyncio, and the tests of a command whose backend
matters (it runs async work: sync, demo, export, serve) run it on both backends through
:func:`cli_backend`.
"""

import pytest

from ..download._tls import ca, ca_file, mutual_tls_server, tls_server  # noqa: F401
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
    """The test harness's own backend: one run of each async CLI test, not one per backend."""
    return "asyncio"


@pytest.fixture(params=["asyncio", "trio"])
def cli_backend(request: pytest.FixtureRequest) -> str:
    """The ``--backend`` the command under test runs on: each test using it runs on both."""
    return str(request.param)
