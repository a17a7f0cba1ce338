"""Running ``python -m stageline`` in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

#: How to run the command: this Python, the package's __main__.
COMMAND = [sys.executable, "-m", "stageline"]

#: Seconds any one command may take before the test fails.
COMMAND_TIMEOUT = 60


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without STAGELINE_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGELINE_")}
    env.update(extra)
    return env


def stageline(
    *args: str, home: Path | None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``stageline ARGS --home HOME`` (no --home when None) and return what it did."""
    return subprocess.run(
        [*COMMAND, *args, *([] if home is None else ["--home", str(home)])],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        env=env if env is not None else environment(),
        check=False,
    )


def sync_json(url: str, home: Path, *options: str, **env: str) -> dict[str, Any]:
    """Run ``stageline sync URL -r files --json`` successfully; return its summary."""
    done = stageline(
        "sync", url, "-r", "files", "--json", *options, home=home, env=environment(**env)
    )
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The error a failed command printed; it must be one line, with no traceback."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, done.stderr
    return errors[0]
