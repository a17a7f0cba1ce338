"""An example pipeline: discovery, batching and resolution, on asyncio and on trio.

Run it with ``python docs/examples/pipeline_demo.py``. A first stage "discovers" a tree
of units: it puts each parent, awaits its resolution, then puts the children the parent
revealed. A batching stage stands in for a saver; a last stage resolves every item.
"""

from __future__ import annotations

import sys
import time

import anyio
import attrs

from stageline import DeclarativeContent, Stage, create_pipeline
from stageline.models import Content


@attrs.define(eq=False, kw_only=True)
class Node(Content):
    type_name = "demo.node"
    natural_key_fields = ("path",)

    path: str
    children: int = 0


class Discover(Stage):
    """Puts parents, waits for each to be resolved, then puts what it revealed."""

    def __init__(self, depth: int, width: int) -> None:
        self.depth, self.width = depth, width

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.walk, "/", 0)

    async def walk(self, path: str, level: int) -> None:
        d = DeclarativeContent(Node(path=path, children=self.width if level < self.depth else 0))
        await self.put(d)
        node = await d.resolution()
        async with anyio.create_task_group() as tg:
            for i in range(node.children):
                tg.start_soon(self.walk, f"{path}{i}/", level + 1)


class Save(Stage):
    """Stands in for a saver: handles items in batches of up to 100."""

    def __init__(self) -> None:
        self.batch_count = 0

    async def run(self) -> None:
        async for batch in self.batches(minsize=100):
            self.batch_count += 1
            for d in batch:
                await self.put(d)


class Resolve(Stage):
    """Resolves every item, like ResolveContentFutures, and counts them."""

    def __init__(self) -> None:
        self.count = 0

    async def run(self) -> None:
        async for d in self.items():
            d.resolve()
            self.count += 1
            await self.put(d)


async def demo() -> None:
    save, resolve = Save(), Resolve()
    start = time.perf_counter()
    await create_pipeline([Discover(depth=4, width=6), save, resolve])
    elapsed = time.perf_counter() - start
    print(
        f"  {resolve.count} units discovered over 5 levels, saved in {save.batch_count} batches, "
        f"in {elapsed:.2f}s"
    )


def main() -> int:
    for backend in ("asyncio", "trio"):
        print(f"{backend}:")
        anyio.run(demo, backend=backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
