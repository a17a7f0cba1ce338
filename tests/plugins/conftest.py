"""Fixtures for the plugin tests: a local server and workspaces (shared with tests/sync)."""

from ..sync.fixtures import (  # noqa: F401  (fixtures are found by name)
    _collect_garbage,
    any_database,
    any_workspace,
    home,
    no_backoff,
    postgresql_url,
    server,
    workspace,
)
