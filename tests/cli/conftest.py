"""Fixtures for the CLI tests (see tests/sync/fixtures.py)."""

from ..sync.fixtures import (  # noqa: F401  (fixtures are found by name)
    _collect_garbage,
    home,
    no_backoff,
    server,
    upstream,
    workspace,
)
