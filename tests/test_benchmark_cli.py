"""The CLI benchmark script still runs, so that it cannot rot between measurements."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._benchmark_runner import run_benchmark


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_the_cli_benchmark_runs_every_measurement_on_both_backends(tmp_path: Path) -> None:
    """A tiny run of the CLI benchmark times each kind of sync on both backends, and parsing."""
    report = run_benchmark(
        "cli.py",
        "--sizes=50",
        "--immediate-files=10",
        "--parse-lines=100,2000",
        directory=tmp_path,
        timeout=380,
    )
    for backend in ("asyncio", "trio"):
        for what, units in (
            ("on_demand", 50),
            ("forced (on_demand)", 50),
            ("skip (on_demand)", 50),
            ("immediate", 10),
            ("forced (immediate)", 10),
            ("skip (immediate)", 10),
        ):
            assert f"| {what} | {backend} | {units} |" in report
        assert f"| bare httpx (immediate) | {backend} | 10 |" in report
    assert "| parsing | asyncio | 100 |" in report
    assert "| parsing | asyncio | 2000 |" in report
    assert "asyncio: on_demand best" in report
    assert "trio: on_demand best" in report
