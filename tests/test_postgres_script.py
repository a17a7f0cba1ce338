"""scripts/postgres.sh gives each checkout its own test server: its port comes from its path.

These run the script's functions in bash (``STAGELINE_POSTGRES_FUNCTIONS_ONLY=1`` defines
them without starting anything, and a URL is set besides, so that even a script that
ignored the first would start nothing); no PostgreSQL cluster is started here.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "postgres.sh"


def call(function: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run one of the script's functions in bash; its stdout and stderr are returned."""
    return subprocess.run(
        ["bash", "-c", f'. "$0" && {function} "$@"', str(SCRIPT), *arguments],
        env={
            "PATH": "/usr/bin:/bin",
            "STAGELINE_POSTGRES_FUNCTIONS_ONLY": "1",
            "STAGELINE_TEST_POSTGRESQL_URL": "postgresql+psycopg://unused@127.0.0.1:9/none",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def derived_port(checkout: str) -> int:
    result = call("_stageline_pg_derived_port", checkout)
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def test_two_checkouts_get_two_ports() -> None:
    """Two checkout paths derive two different ports, each stable and in 54330–59329."""
    first = derived_port("/work/main")
    second = derived_port("/work/wt/storage-integrity")
    assert first != second
    assert {first, second} <= set(range(54330, 59330))
    assert derived_port("/work/main") == first
    assert 54329 not in {derived_port(f"/srv/checkout-{n}") for n in range(50)}


def test_a_taken_port_is_never_shared() -> None:
    """When something listens on the derived port, the next free port is chosen instead."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        taken = listener.getsockname()[1]
        result = call("_stageline_pg_free_port", str(taken))
    assert result.returncode == 0, result.stderr
    chosen = int(result.stdout)
    assert taken < chosen <= taken + 19


def test_a_free_port_is_kept() -> None:
    """A derived port that nothing listens on is used as it is."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    result = call("_stageline_pg_free_port", str(port))
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == port
