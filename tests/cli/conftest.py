"""Fixtures for the CLI tests: a local server (shared with tests/sync)."""

from ..sync.fixtures import _collect_garbage, server  # noqa: F401  (fixtures are found by name)
