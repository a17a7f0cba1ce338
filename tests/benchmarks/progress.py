"""Benchmark what ``ProgressReport.increment()`` and ``increase_by()`` cost per call.

Run it with ``.venv/bin/python tests/benchmarks/progress.py`` (``--help`` for options).

A sync of 100 000 units calls ``increment()`` at least 100 000 times, so its cost must
stay near that of any Python method call. Each configuration opens one report and calls
the method N times in a plain ``for`` loop inside its ``async with`` block, on the event
loop of each backend. The figures are nanoseconds per call (loop included), the best of
``--repeats`` rounds (each round runs every configuration once), measured twice: by the
process's CPU time (every thread of it, so rich's drawing thread counts; steadier on a
shared machine) and by the wall clock.

Configurations:

- ``floor``: a method doing only ``self.done += 1``: the least any counter costs;
- ``none``: no reporter installed;
- ``memory``: a :class:`MemoryReporter` (default 0.1 s interval);
- ``logging``: a :class:`LoggingReporter` whose logger writes to a string;
- ``rich``: a :class:`RichReporter` drawing bars on a forced-terminal console that
  writes to a string (rich redraws from its own thread 10 times a second);
- ``all``: the three reporters at once.

Reporters are told at most every 0.1 s, so what they do is spread over the calls; the
extra cost they add per call is mostly that of taking their locks in another thread.
"""

from __future__ import annotations

import argparse
import gc
import io
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from importlib.metadata import version

import anyio
from rich.console import Console

import stageline
from stageline.progress import (
    LoggingReporter,
    MemoryReporter,
    ProgressReport,
    ProgressReporter,
    RichReporter,
    reporting_to,
)

CONFIGS = ["floor", "none", "memory", "logging", "rich", "all"]


class Floor:
    """The cheapest counter a method call can be."""

    def __init__(self) -> None:
        self.done = 0

    def increment(self) -> None:
        self.done += 1

    def increase_by(self, n: int) -> None:
        self.done += n


def logging_reporter() -> LoggingReporter:
    logger = logging.getLogger("benchmark.progress")
    logger.handlers[:] = [logging.StreamHandler(io.StringIO())]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return LoggingReporter(logger)


@contextmanager
def reporters_for(config: str) -> Iterator[None]:
    with ExitStack() as stack:
        chosen: list[ProgressReporter] = []
        if config in ("memory", "all"):
            chosen.append(MemoryReporter())
        if config in ("logging", "all"):
            chosen.append(logging_reporter())
        if config in ("rich", "all"):
            console = Console(file=io.StringIO(), force_terminal=True, width=100)
            chosen.append(stack.enter_context(RichReporter(console)))
        stack.enter_context(reporting_to(*chosen))
        yield


def time_calls(config: str, method: str, backend: str, n: int) -> tuple[float, float]:
    """Seconds of CPU and wall time for n calls of ``method`` in one report of ``config``."""

    async def run() -> tuple[float, float]:
        with reporters_for(config):
            if config == "floor":
                counter = Floor()
                return loop(counter.increment, counter.increase_by, method, n)
            async with ProgressReport("Benchmark", "benchmark.progress", total=n) as report:
                return loop(report.increment, report.increase_by, method, n)

    return anyio.run(run, backend=backend)


def loop(
    increment: Callable[[], None], increase_by: Callable[[int], None], method: str, n: int
) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    if method == "increment":
        for _ in range(n):
            increment()
    else:
        for _ in range(n):
            increase_by(1)
    return time.process_time() - cpu, time.perf_counter() - wall


def describe_machine() -> str:
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"anyio {version('anyio')}, trio {version('trio')}, rich {version('rich')}, "
        f"stageline {stageline.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("-n", "--calls", type=int, default=1_000_000, help="calls per run (N)")
    parser.add_argument(
        "-r", "--repeats", type=int, default=7, help="rounds; the best run of each counts"
    )
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=CONFIGS)
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=["increment", "increase_by"],
        default=["increment", "increase_by"],
    )
    parser.add_argument(
        "--backends", nargs="+", choices=["asyncio", "trio"], default=["asyncio", "trio"]
    )
    args = parser.parse_args(argv)
    n = args.calls

    print(describe_machine())
    print(f"N={n} calls per run, best of {args.repeats}; ns per call, loop included")
    runs = [
        (config, method, backend)
        for method in args.methods
        for config in args.configs
        for backend in args.backends
    ]
    best_cpu: dict[tuple[str, str, str], float] = {}
    best_wall: dict[tuple[str, str, str], float] = {}
    for run in runs:  # one unmeasured round: imports, caches, the first rich console
        time_calls(*run, min(n, 10_000))
    for _ in range(args.repeats):
        for run in runs:
            gc.collect()
            cpu, wall = time_calls(*run, n)
            best_cpu[run] = min(best_cpu.get(run, float("inf")), cpu)
            best_wall[run] = min(best_wall.get(run, float("inf")), wall)

    header = "".join(f"{b + ' cpu':>12}{b + ' wall':>13}" for b in args.backends)
    print(f"{'method':<12} {'reporters':<10}{header}")
    for method in args.methods:
        for config in args.configs:
            cells = "".join(
                f"{best_cpu[config, method, backend] / n * 1e9:>12.0f}"
                f"{best_wall[config, method, backend] / n * 1e9:>13.0f}"
                for backend in args.backends
            )
            print(f"{method:<12} {config:<10}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
