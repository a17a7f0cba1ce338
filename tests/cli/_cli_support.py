"""Helpers of the CLI tests: ``python -m stageline`` in a subprocess, the test plugin loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio

ROOT = Path(__file__).parent.parent.parent

#: ``python -m stageline``, after importing the test plugin whose content the tests sync
#: (an installed plugin would be found through its entry point instead).
STAGELINE = [
    sys.executable,
    "-c",
    "import runpy, tests.sync._plugin; runpy.run_module('stageline', run_name='__main__')",
]


async def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``stageline ARGS`` to its end; its exit code, stdout and stderr."""
    with anyio.fail_after(60):
        return await anyio.run_process([*STAGELINE, *args], cwd=ROOT, check=False)
