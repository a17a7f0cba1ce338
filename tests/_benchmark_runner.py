"""Running a benchmark script of tests/benchmarks/ in a subprocess, for the tests that check
it still runs (so that it cannot rot between measurements)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parent / "benchmarks"


def run_benchmark(script: str, *args: str, directory: Path, timeout: float) -> str:
    """Run ``tests/benchmarks/SCRIPT ARGS --directory=DIRECTORY`` with this Python; it must
    exit 0 within ``timeout`` seconds. Its report (standard output)."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args, f"--directory={directory}"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
