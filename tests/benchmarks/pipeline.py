"""Benchmark the pipeline engine against the asyncio-era design of the Stages API.

Run it with ``.venv/bin/python tests/benchmarks/pipeline.py`` (``--help`` for options).

A first stage puts N items; K pass-through stages hand every item on; a last stage drains
the stream. The items are ``DeclarativeContent`` objects wrapping a trivial ``Content``
subclass, which is what real pipelines carry. Where they are made is the ``--made`` axis:

- ``before``: before the clock starts, afresh for every run, for the baseline and for
  stageline alike, so only the engine's cost is measured;
- ``in-stage``: by the first stage, inside the timed region, as a plugin's first stage
  makes them (``DeclarativeContent(BenchContent(number=i))`` per item, for the baseline
  and for stageline alike), so the cost of making an item counts too.

Two kinds of pass-through stage are measured:

- ``items``: ``async for d in self.items(): await self.put(d)``;
- ``batches``: ``async for batch in self.batches(): for d in batch: await self.put(d)``,
  with the default ``minsize`` of 500.

The baseline is written here from the documented design of the asyncio-era Stages API:
``asyncio.Queue(maxsize=1)`` between stages, ``None`` as the end marker, an ``items()``
that awaits ``get()`` until ``None``, and a ``batches()`` that waits with
``asyncio.wait`` on a pending ``get()`` and on a "thaw" event task, then takes what it can
without blocking. It runs on asyncio only; stageline runs on asyncio and on trio, and both
are compared with the asyncio baseline.

Two shimmed engines (``stageline_compat``, the asyncio-era API on stageline) run on asyncio:

- ``shim-queues``: shimmed stages wired by hand the old way, ``_connect(in_q, out_q)`` to
  ``asyncio.Queue(maxsize=--shim-queue-size)`` (1, the old size, by default) and run with
  ``asyncio.gather(*(stage() for stage in stages))``; ``items()``/``batches()`` are the
  engine's, reading the queues through the shim's adapter;
- ``shim-pipeline``: the same shimmed stages through ``stageline_compat.create_pipeline``
  (the engine's streams, its default buffer unless ``--maxsize``).

Their items are ``stageline_compat.DeclarativeContent`` objects.

The figure printed is items per second (N / wall time of the whole pipeline, or its CPU
time with ``--clock cpu``, from the
first put to the last item drained), the best of ``--repeats`` rounds; each round runs
every configuration once, so a burst of load from other processes spoils one run of each
configuration rather than all runs of one.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Iterator
from importlib.metadata import version
from typing import Any, ClassVar

import anyio
import attrs

import stageline
import stageline_compat
from stageline import DeclarativeContent, EndStage, Stage, create_pipeline
from stageline.models import Content


@attrs.define(eq=False, kw_only=True)
class BenchContent(Content):
    """The trivial content type the benchmark items wrap."""

    type_name: ClassVar[str] = "benchmark.unit"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("number",)

    number: int


def make_items(n: int, kind: type[DeclarativeContent] = DeclarativeContent) -> list[Any]:
    """Fresh items for one run (an item remembers the pipeline it travelled in)."""
    return [kind(BenchContent(number=i)) for i in range(n)]


class Source:
    """What the first stage puts: a list made before the clock starts, or ``count`` items
    made one by one as they are put."""

    def __init__(
        self, count: int, made: str, kind: type[DeclarativeContent] = DeclarativeContent
    ) -> None:
        self.count = count
        self.kind = kind
        self.made_before = make_items(count, kind) if made == "before" else None

    def __iter__(self) -> Iterator[DeclarativeContent]:
        if self.made_before is not None:
            return iter(self.made_before)
        kind = self.kind
        return (kind(BenchContent(number=i)) for i in range(self.count))


# --------------------------------------------------------------------------------------
# The baseline: the asyncio-era design, written from its documented description.
# --------------------------------------------------------------------------------------


class BaselineStage:
    """A stage as the asyncio-era design had it: joined to its neighbours by queues."""

    _in_q: asyncio.Queue[Any]
    _out_q: asyncio.Queue[Any]

    async def run(self) -> None:
        raise NotImplementedError

    async def items(self) -> AsyncIterator[Any]:
        while True:
            item = await self._in_q.get()
            if item is None:
                return
            yield item

    async def batches(self, minsize: int = 500) -> AsyncIterator[list[Any]]:
        batch: list[Any] = []
        shutdown = False
        no_block = False
        thaw = asyncio.Event()

        def add(item: Any) -> None:
            nonlocal shutdown, no_block
            if item is None:
                shutdown = True
                return
            if not item.does_batch:
                no_block = True
            batch.append(item)

        get_task: asyncio.Task[Any] = asyncio.ensure_future(self._in_q.get())
        thaw_task: asyncio.Task[Any] = asyncio.ensure_future(thaw.wait())
        try:
            while not shutdown:
                done, _ = await asyncio.wait(
                    [get_task, thaw_task], return_when=asyncio.FIRST_COMPLETED
                )
                if thaw_task in done:
                    thaw.clear()
                    no_block = True
                    thaw_task = asyncio.ensure_future(thaw.wait())
                if get_task in done:
                    add(get_task.result())
                    if not shutdown:
                        get_task = asyncio.ensure_future(self._in_q.get())
                while not shutdown:
                    try:
                        item = self._in_q.get_nowait()
                    except asyncio.QueueEmpty:
                        break
                    add(item)
                if batch and (len(batch) >= minsize or shutdown or no_block):
                    yield batch
                    batch = []
                    no_block = False
        finally:
            get_task.cancel()
            thaw_task.cancel()

    async def put(self, item: Any) -> None:
        if item is None:
            raise ValueError("None is not an item")
        await self._out_q.put(item)

    async def __call__(self) -> None:
        await self.run()
        if hasattr(self, "_out_q"):
            await self._out_q.put(None)


async def run_baseline(stages: list[BaselineStage]) -> None:
    for upstream, downstream in itertools.pairwise(stages):
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
        upstream._out_q = downstream._in_q = queue
    await asyncio.gather(*(stage() for stage in stages))


class BaselineSource(BaselineStage):
    def __init__(self, items: Source) -> None:
        self.source = items

    async def run(self) -> None:
        for d in self.source:
            await self.put(d)


class BaselineItemsPass(BaselineStage):
    async def run(self) -> None:
        async for d in self.items():
            await self.put(d)


class BaselineBatchesPass(BaselineStage):
    async def run(self) -> None:
        async for batch in self.batches():
            for d in batch:
                await self.put(d)


class BaselineEnd(BaselineStage):
    def __init__(self) -> None:
        self.count = 0

    async def run(self) -> None:
        async for _ in self.items():
            self.count += 1


# --------------------------------------------------------------------------------------
# stageline
# --------------------------------------------------------------------------------------


class FirstStage(Stage):
    def __init__(self, items: Source) -> None:
        self.source = items

    async def run(self) -> None:
        for d in self.source:
            await self.put(d)


class ItemsPass(Stage):
    async def run(self) -> None:
        async for d in self.items():
            await self.put(d)


class BatchesPass(Stage):
    async def run(self) -> None:
        async for batch in self.batches():
            for d in batch:
                await self.put(d)


class CountingEnd(EndStage):
    def __init__(self) -> None:
        self.count = 0

    async def run(self) -> None:
        async for _ in self.items():
            self.count += 1


# --------------------------------------------------------------------------------------
# stageline_compat: the same stages written against the shim
# --------------------------------------------------------------------------------------


class ShimFirst(stageline_compat.Stage):
    def __init__(self, items: Source) -> None:
        self.source = items

    async def run(self) -> None:
        for d in self.source:
            await self.put(d)


class ShimItemsPass(stageline_compat.Stage):
    async def run(self) -> None:
        async for d in self.items():
            await self.put(d)


class ShimBatchesPass(stageline_compat.Stage):
    async def run(self) -> None:
        async for batch in self.batches():
            for d in batch:
                await self.put(d)


class ShimEnd(stageline_compat.EndStage):
    def __init__(self) -> None:
        self.count = 0

    async def run(self) -> None:
        async for _ in self.items():
            self.count += 1


def time_shim(n: int, k: int, variant: str, made: str, wiring: str, size: int | None) -> float:
    """Time shimmed stages, wired by hand to queues of ``size`` or run by create_pipeline."""
    items = Source(n, made, stageline_compat.DeclarativeContent)
    passing = ShimItemsPass if variant == "items" else ShimBatchesPass
    end = ShimEnd()
    stages: list[stageline_compat.Stage] = [
        ShimFirst(items),
        *(passing() for _ in range(k)),
        end,
    ]

    async def by_hand() -> None:
        queues: list[asyncio.Queue[Any] | None] = [
            None,
            *(asyncio.Queue(maxsize=size or 0) for _ in range(k + 1)),
            None,
        ]
        for stage, (in_q, out_q) in zip(stages, itertools.pairwise(queues), strict=True):
            stage._connect(in_q, out_q)
        await asyncio.gather(*(stage() for stage in stages))

    async def main() -> float:
        start = CLOCK()
        if wiring == "queues":
            await by_hand()
        elif size is None:
            await stageline_compat.create_pipeline(stages)
        else:
            await stageline_compat.create_pipeline(stages, maxsize=size)
        return CLOCK() - start

    elapsed = asyncio.run(main())
    if end.count != n:
        raise AssertionError(f"shim lost items: {end.count} of {n} arrived")
    return elapsed


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


def time_baseline(n: int, k: int, variant: str, made: str) -> float:
    items = Source(n, made)
    passing = BaselineItemsPass if variant == "items" else BaselineBatchesPass
    end = BaselineEnd()
    stages: list[BaselineStage] = [BaselineSource(items), *(passing() for _ in range(k)), end]

    async def main() -> float:
        start = CLOCK()
        await run_baseline(stages)
        return CLOCK() - start

    elapsed = asyncio.run(main())
    if end.count != n:
        raise AssertionError(f"baseline lost items: {end.count} of {n} arrived")
    return elapsed


#: What a run is timed with: the wall clock by default; ``--clock cpu`` times this
#: process's CPU time instead, which other processes on a shared machine disturb far less
#: (the pipeline runs on one thread, so its CPU time is its cost).
CLOCK = time.perf_counter

#: How often the latency probe asks to be woken.
PROBE_PERIOD: float = 0.001


def time_stageline(
    n: int,
    k: int,
    variant: str,
    backend: str,
    made: str,
    maxsize: int | None,
    lateness: list[float] | None = None,
) -> float:
    """Time one run; with ``lateness`` given (a list), also probe scheduling latency.

    The probe is a task that sleeps PROBE_PERIOD at a time; how late it wakes up is how
    long the pipeline's stages kept the event loop without passing through the scheduler.
    The worst lateness seen in the run is appended to ``lateness``.
    """
    items = Source(n, made)
    passing = ItemsPass if variant == "items" else BatchesPass
    end = CountingEnd()
    stages: list[Stage] = [FirstStage(items), *(passing() for _ in range(k)), end]
    worst = 0.0

    async def probe(done: anyio.Event) -> None:
        nonlocal worst
        while not done.is_set():
            before = time.perf_counter()
            await anyio.sleep(PROBE_PERIOD)
            worst = max(worst, time.perf_counter() - before - PROBE_PERIOD)

    async def run_pipeline() -> None:
        if maxsize is None:
            await create_pipeline(stages)
        else:
            await create_pipeline(stages, maxsize=maxsize)

    async def main() -> float:
        start = CLOCK()
        if lateness is None:
            await run_pipeline()
        else:
            done = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(probe, done)
                await run_pipeline()
                done.set()
        return CLOCK() - start

    elapsed = anyio.run(main, backend=backend)
    if end.count != n:
        raise AssertionError(f"stageline lost items: {end.count} of {n} arrived")
    if lateness is not None:
        lateness.append(worst)
    return elapsed


def describe_machine() -> str:
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"anyio {version('anyio')}, trio {version('trio')}, stageline {stageline.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("-n", "--items", type=int, default=100_000, help="items (N)")
    parser.add_argument("-k", "--stages", type=int, default=8, help="pass-through stages (K)")
    parser.add_argument(
        "-r", "--repeats", type=int, default=5, help="rounds; the best run of each counts"
    )
    parser.add_argument(
        "--maxsize", type=int, default=None, help="stageline buffer size (default: the default)"
    )
    parser.add_argument(
        "--variants", nargs="+", choices=["items", "batches"], default=["items", "batches"]
    )
    parser.add_argument(
        "--made",
        nargs="+",
        choices=["before", "in-stage"],
        default=["before", "in-stage"],
        help="where the items are made: before the clock starts, or by the first stage",
    )
    parser.add_argument(
        "--backends", nargs="+", choices=["asyncio", "trio"], default=["asyncio", "trio"]
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline")
    parser.add_argument(
        "--shim",
        nargs="*",
        choices=["queues", "pipeline"],
        default=["queues", "pipeline"],
        help="the stageline_compat engines to run: hand-wired queues, create_pipeline "
        "(give none to skip both)",
    )
    parser.add_argument(
        "--shim-queue-size",
        type=int,
        default=1,
        help="the asyncio.Queue size of the hand-wired shim (default 1, the old size; 0 "
        "is unbounded)",
    )
    parser.add_argument(
        "--latency",
        action="store_true",
        help="also run a task that sleeps 1 ms at a time beside the pipeline and print how "
        "late it woke at worst in a run (the median over the runs): how long stages held "
        "the event loop; it costs a little throughput",
    )
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="time runs by the wall clock (default) or by this process's CPU time, "
        "steadier on a machine shared with other work",
    )
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    n, k, repeats = args.items, args.stages, args.repeats

    print(describe_machine())
    print(
        f"N={n} items, K={k} pass-through stages, best of {repeats}, {args.clock} clock; "
        f"DEFAULT_MAXSIZE={stageline.DEFAULT_MAXSIZE}, "
        f"CHECKPOINT_INTERVAL={stageline.CHECKPOINT_INTERVAL}"
        + (f", maxsize={args.maxsize}" if args.maxsize is not None else "")
    )
    engines = (
        ([] if args.no_baseline else ["baseline"])
        + list(args.backends)
        + [f"shim-{wiring}" for wiring in args.shim]
    )
    configs = [
        (made, variant, engine)
        for made in args.made
        for variant in args.variants
        for engine in engines
    ]
    best: dict[tuple[str, str, str], float] = {}
    lateness: dict[tuple[str, str, str], list[float]] = {config: [] for config in configs}
    # Each round runs every configuration once, so that a burst of load from other
    # processes spoils one run of each configuration rather than every run of one.
    for _ in range(repeats):
        for config in configs:
            made, variant, engine = config
            gc.collect()
            if engine == "baseline":
                elapsed = time_baseline(n, k, variant, made)
            elif engine == "shim-queues":
                elapsed = time_shim(n, k, variant, made, "queues", args.shim_queue_size)
            elif engine == "shim-pipeline":
                elapsed = time_shim(n, k, variant, made, "pipeline", args.maxsize)
            else:
                probe = lateness[config] if args.latency else None
                elapsed = time_stageline(n, k, variant, engine, made, args.maxsize, probe)
            best[config] = min(best.get(config, float("inf")), elapsed)

    print(f"{'made':<9} {'variant':<9} {'engine':<22} {'items/s':>12} {'vs baseline':>12}")
    for config in configs:
        made, variant, engine = config
        rate = n / best[config]
        if engine == "baseline":
            print(f"{made:<9} {variant:<9} {'baseline (asyncio)':<22} {rate:>12,.0f} {'1.0x':>12}")
            continue
        base = best.get((made, variant, "baseline"))
        ratio = f"{rate / (n / base):.1f}x" if base else "-"
        if engine == "shim-queues":
            name = f"shim, Queue({args.shim_queue_size})"
        elif engine == "shim-pipeline":
            name = "shim, create_pipeline"
        else:
            name = f"stageline ({engine})"
        line = f"{made:<9} {variant:<9} {name:<22} {rate:>12,.0f} {ratio:>12}"
        if args.latency and not engine.startswith("shim"):
            worst = statistics.median(lateness[config])
            line += f"   probe lateness {worst * 1000:.2f} ms"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
