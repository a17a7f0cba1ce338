"""Fixtures for the sync tests (see fixtures.py)."""

from .fixtures import (  # noqa: F401  (fixtures are found by name)
    _collect_garbage,
    any_database,
    any_workspace,
    home,
    no_backoff,
    postgresql_url,
    server,
    storage,
    store,
    upstream,
    workspace,
)
