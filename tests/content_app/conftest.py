"""Fixtures for the content app tests (see tests/sync/fixtures.py)."""

from ..sync.fixtures import (  # noqa: F401  (fixtures are found by name)
    _collect_garbage,
    any_database,
    any_workspace,
    home,
    no_backoff,
    postgresql_url,
    server,
    upstream,
    workspace,
)
