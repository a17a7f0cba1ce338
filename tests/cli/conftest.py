"""Fixtures for the CLI tests: a local server (shared with tests/sync), TLS (tests/download)."""

from ..download.conftest import ca, ca_file, tls_server  # noqa: F401  (fixtures are found by name)
from ..sync.fixtures import _collect_garbage, server  # noqa: F401
