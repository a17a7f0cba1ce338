"""Small stages the engine tests build pipelines from."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import anyio
import attrs

from stageline import DeclarativeContent, Stage
from stageline.models import Content

#: Seconds a test that could only fail by hanging waits before it fails with TimeoutError:
#: far above what any of them takes, far below pytest's own timeout (pyproject.toml), so
#: a regression fails in seconds with a message naming the test.
HANG_TIMEOUT = 10


@attrs.define(eq=False, kw_only=True)
class Node(Content):
    """A trivial content type for engine tests."""

    type_name: ClassVar[str] = "tests.node"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("name",)

    name: str


def make_items(count: int) -> list[DeclarativeContent]:
    """``count`` fresh DeclarativeContent items named "0", "1", …."""
    return [DeclarativeContent(Node(name=str(i))) for i in range(count)]


class Feed(Stage):
    """First stage: puts the given items."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.to_put = list(items)

    async def run(self) -> None:
        for item in self.to_put:
            await self.put(item)


class PassItems(Stage):
    """Passes every item on, one at a time."""

    async def run(self) -> None:
        async for item in self.items():
            await self.put(item)


class PassBatches(Stage):
    """Passes every item on, reading in batches."""

    def __init__(self, minsize: int = 500) -> None:
        self.minsize = minsize

    async def run(self) -> None:
        async for batch in self.batches(minsize=self.minsize):
            for item in batch:
                await self.put(item)


class RecordBatches(Stage):
    """Records every batch it receives, then passes the items on."""

    def __init__(self, minsize: int, flush_event: Any = None) -> None:
        self.minsize = minsize
        self.flush_event = flush_event
        self.seen: list[list[Any]] = []

    async def run(self) -> None:
        async for batch in self.batches(minsize=self.minsize, flush_event=self.flush_event):
            self.seen.append(list(batch))
            for item in batch:
                await self.put(item)


class Resolve(Stage):
    """Resolves every item and passes it on, like ResolveContentFutures."""

    async def run(self) -> None:
        async for d in self.items():
            d.resolve()
            await self.put(d)


class Collect(Stage):
    """Records every item it receives."""

    def __init__(self) -> None:
        self.items_seen: list[Any] = []

    async def run(self) -> None:
        async for item in self.items():
            self.items_seen.append(item)


class Gate(Stage):
    """Reads nothing until ``open`` is set, then drains its input."""

    def __init__(self) -> None:
        self.open = anyio.Event()

    async def run(self) -> None:
        await self.open.wait()
        async for _ in self.items():
            pass
