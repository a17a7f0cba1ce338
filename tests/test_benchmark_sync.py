"""The sync benchmark script still runs, so that it cannot rot between measurements."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._benchmark_runner import run_benchmark


@pytest.mark.slow
# A guard against a hang only: eight subprocess syncs take ~30 s idle, 70 s on a loaded
# machine; the default 120 s timeout was too close.
@pytest.mark.timeout(330)
def test_the_sync_benchmark_runs_every_measurement_on_both_backends(tmp_path: Path) -> None:
    """A tiny run of tests/benchmarks/sync.py measures and reports everything, both backends."""
    report = run_benchmark(
        "sync.py",
        "--quick",
        "--units=300",
        "--files=40",
        "--memory-units=100,300",
        directory=tmp_path,
        timeout=300,
    )
    for backend in ("asyncio", "trio"):
        assert f"\n{backend}\n" in report
    for line, count in {
        "on_demand sync of 300 units": 2,
        "its no-change re-sync": 2,
        "ceilings: the first stage alone": 4,
        "immediate sync of 40 x 1 KiB": 2,
        "on_demand peak memory (tracemalloc)": 2,
        "on_demand RSS high-water": 2,
        "mirror re-sync peak memory (tracemalloc)": 2,
        "mirror re-sync RSS high-water": 2,
    }.items():
        assert report.count(line) == count, (line, report)
    assert list(tmp_path.iterdir()) == [], "the benchmark left files behind"
