"""Ready-made stages and helpers that tests build pipelines from.

Each stage records what it saw in public attributes and sets ``exited`` when its ``run``
ends (by returning, raising or being cancelled), so a test can check afterwards that no
stage was left running. Stages that take ``fail_after`` and ``error`` raise ``error`` just
before they would put item number ``fail_after + 1`` (counting from 1), or when their
input ends if they put fewer items: a failure planned that way always happens.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, TypeAlias

import anyio
import anyio.abc
import attrs

from .._declarative import DeclarativeContent
from .._exceptions import InvalidValueError, PipelineError
from .._resolvable import Resolvable
from .._stage import Stage
from ..models import Content
from ._content import SampleContent

__all__ = [
    "AwaitMoment",
    "AwaitPlan",
    "Awaiter",
    "AwaiterKind",
    "BatchRecord",
    "Collector",
    "Discoverer",
    "DiscoveryNode",
    "Feeder",
    "PassThrough",
    "PlannedAwaits",
    "Resolver",
    "start_awaiter",
]


class _FailingStage(Stage):
    """Counts puts and raises the planned error at the planned point."""

    def __init__(self, *, fail_after: int | None = None, error: Exception | None = None) -> None:
        if (fail_after is None) != (error is None):
            raise InvalidValueError(
                f"{type(self).__name__}: give both fail_after and error, or neither "
                f"(got fail_after={fail_after!r}, error={error!r})"
            )
        if fail_after is not None and fail_after < 0:
            raise InvalidValueError(
                f"{type(self).__name__}: fail_after must be >= 0, got {fail_after!r}"
            )
        self.fail_after = fail_after
        self.error = error
        #: How many items this stage has passed on so far.
        self.put_count = 0
        #: True once ``run`` has ended, however it ended.
        self.exited = False

    def _maybe_fail(self) -> None:
        error, limit = self.error, self.fail_after
        if error is not None and limit is not None and self.put_count >= limit:
            raise error

    async def _pass_on(self, item: Any) -> None:
        self._maybe_fail()
        await self.put(item)
        self.put_count += 1

    async def run(self) -> None:
        try:
            await self._run()
            # Fewer items than fail_after came through: fail at the end of input instead.
            if self.error is not None:
                raise self.error
        finally:
            self.exited = True

    async def _run(self) -> None:
        raise NotImplementedError


class Feeder(_FailingStage):
    """A first stage that puts the given items in order.

    Attributes:
        items_to_put: the items to put.
        started_puts: how many ``put`` calls have started; an item with a lower index
            may already be anywhere downstream, one with a higher index is nowhere yet.
        put_count: how many ``put`` calls have returned.
        exited: True once ``run`` has ended.

    Args:
        items: the items to put.
        fail_after: raise ``error`` after this many items were put.
        error: the exception to raise.
    """

    def __init__(
        self,
        items: Iterable[Any],
        *,
        fail_after: int | None = None,
        error: Exception | None = None,
    ) -> None:
        super().__init__(fail_after=fail_after, error=error)
        self.items_to_put = list(items)
        self.started_puts = 0

    async def _run(self) -> None:
        for item in self.items_to_put:
            self._maybe_fail()
            self.started_puts += 1
            await self.put(item)
            self.put_count += 1


@attrs.frozen
class BatchRecord:
    """One batch a :class:`PassThrough` received, as it was when ``batches()`` yielded it.

    Attributes:
        items: the items of the batch, in order.
        awaited: some item in it was being awaited and was not resolved
            (its ``does_batch`` was False).
        flushed: the stage's flush event was set.
    """

    items: tuple[Any, ...]
    awaited: bool
    flushed: bool


class PassThrough(_FailingStage):
    """A middle stage that passes every item on, reading with ``items()`` or ``batches()``.

    Args:
        minsize: None to read with ``items()``; an int to read with ``batches(minsize)``.
        flush_event: given to ``batches()``.
        on_batch: called with each batch as soon as ``batches()`` yields it (before any
            item of it is passed on); it may raise to fail the pipeline.
        fail_after: raise ``error`` after this many items were put.
        error: the exception to raise.

    Attributes:
        seen: every item received, in order.
        batches_seen: a :class:`BatchRecord` per batch (batch mode only).
        put_count: how many items were passed on.
        exited: True once ``run`` has ended.
    """

    def __init__(
        self,
        *,
        minsize: int | None = None,
        flush_event: anyio.Event | None = None,
        on_batch: Callable[[list[Any]], None] | None = None,
        fail_after: int | None = None,
        error: Exception | None = None,
    ) -> None:
        super().__init__(fail_after=fail_after, error=error)
        self.minsize = minsize
        self.flush_event = flush_event
        self.on_batch = on_batch
        self.seen: list[Any] = []
        self.batches_seen: list[BatchRecord] = []

    def __repr__(self) -> str:
        mode = "items()" if self.minsize is None else f"batches(minsize={self.minsize})"
        return f"<PassThrough {mode}>"

    async def _run(self) -> None:
        if self.minsize is None:
            async for item in self.items():
                self.seen.append(item)
                await self._pass_on(item)
            return
        async for batch in self.batches(self.minsize, self.flush_event):
            # Recorded before any await, so this is the state at the moment of the yield.
            self.batches_seen.append(
                BatchRecord(
                    items=tuple(batch),
                    awaited=any(not getattr(item, "does_batch", True) for item in batch),
                    flushed=self.flush_event is not None and self.flush_event.is_set(),
                )
            )
            if self.on_batch is not None:
                self.on_batch(batch)
            self.seen.extend(batch)
            for item in batch:
                await self._pass_on(item)


class Resolver(_FailingStage):
    """Resolves every item and passes it on, like ``ResolveContentFutures``.

    Content without a primary key gets a made-up one first, standing in for the savers,
    so ``(await d.resolution()).saved`` is True as after a real pipeline.

    Attributes:
        resolved: every item resolved, in order.
        put_count: how many items were passed on.
        exited: True once ``run`` has ended.
    """

    def __init__(self, *, fail_after: int | None = None, error: Exception | None = None) -> None:
        super().__init__(fail_after=fail_after, error=error)
        self.resolved: list[Any] = []
        self._pks = itertools.count(1)

    async def _run(self) -> None:
        async for item in self.items():
            content = getattr(item, "content", None)
            if isinstance(content, Content) and content.pk is None:
                content.pk = next(self._pks)
            if isinstance(item, Resolvable):
                item.resolve()
            self.resolved.append(item)
            await self._pass_on(item)


class Collector(_FailingStage):
    """A last stage that records every item it receives.

    Attributes:
        collected: every item received, in order.
        exited: True once ``run`` has ended.
    """

    def __init__(self, *, fail_after: int | None = None, error: Exception | None = None) -> None:
        super().__init__(fail_after=fail_after, error=error)
        self.collected: list[Any] = []
        self._waiting: list[tuple[int, anyio.Event]] = []

    async def wait_for(self, count: int) -> None:
        """Return once at least ``count`` items were collected."""
        if len(self.collected) >= count:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        self._waiting.append((count, event))
        await event.wait()

    async def _run(self) -> None:
        async for item in self.items():
            # A collector counts received items as "put", so fail_after works the same.
            self._maybe_fail()
            self.collected.append(item)
            self.put_count += 1
            ready = [entry for entry in self._waiting if entry[0] <= len(self.collected)]
            for entry in ready:
                self._waiting.remove(entry)
                entry[1].set()


@attrs.define(eq=False)
class Awaiter:
    """Awaits ``item.resolution()`` and records how that ended.

    Start one in a task group with :func:`start_awaiter`, or ``await awaiter.run()``
    inline.

    Attributes:
        item: the awaited item.
        plan: the plan it follows, when started by :class:`PlannedAwaits`.
        content: what ``resolution()`` returned, if it returned.
        error: the :class:`PipelineError` it raised, if it did.
        cancelled: True when the awaiting task was cancelled.
        done: set when the await ended in any of these ways.
    """

    item: DeclarativeContent
    plan: AwaitPlan | None = None
    content: Content | None = None
    error: PipelineError | None = None
    cancelled: bool = False
    done: anyio.Event = attrs.field(factory=anyio.Event)

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Await the item; call ``task_status.started()`` first (for ``TaskGroup.start``)."""
        task_status.started()
        try:
            self.content = await self.item.resolution()
        except PipelineError as exc:
            self.error = exc
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise
        finally:
            self.done.set()


async def start_awaiter(
    task_group: anyio.abc.TaskGroup, item: DeclarativeContent, plan: AwaitPlan | None = None
) -> Awaiter:
    """Start a task in ``task_group`` that awaits ``item.resolution()``; return its record.

    When this returns, the task is already waiting (``item.does_batch`` is False unless
    the item is resolved).
    """
    awaiter = Awaiter(item, plan)
    await task_group.start(awaiter.run)
    return awaiter


#: Who awaits an item: the first stage itself (blocking its puts), a task the first
#: stage starts in its own task group, or a task outside the pipeline.
AwaiterKind: TypeAlias = Literal["first_stage", "stage_task", "outside_task"]

#: When the await starts: before the item is put, right after, or once every task is
#: blocked (so the item sits in a partly filled batch, or as far as it could go).
AwaitMoment: TypeAlias = Literal["before_put", "after_put", "in_batch"]


@attrs.frozen
class AwaitPlan:
    """One planned ``resolution()`` call: on which item, by whom, and when.

    ``first_stage`` awaiters cannot start ``before_put`` (the stage would wait for an item
    it has not put yet): that combination is rejected.

    Raises:
        ValueError: for a negative index or an impossible combination.
    """

    index: int
    awaiter: AwaiterKind
    moment: AwaitMoment

    def __attrs_post_init__(self) -> None:
        if self.index < 0:
            raise InvalidValueError(f"AwaitPlan.index must be >= 0, got {self.index!r}")
        if self.awaiter not in ("first_stage", "stage_task", "outside_task"):
            raise InvalidValueError(f"AwaitPlan.awaiter: unknown kind {self.awaiter!r}")
        if self.moment not in ("before_put", "after_put", "in_batch"):
            raise InvalidValueError(f"AwaitPlan.moment: unknown moment {self.moment!r}")
        if self.awaiter == "first_stage" and self.moment == "before_put":
            raise InvalidValueError(
                "AwaitPlan: the first stage cannot await an item before putting it"
            )


_MOMENTS: tuple[AwaitMoment, ...] = ("before_put", "after_put", "in_batch")


class PlannedAwaits(Feeder):
    """A first stage that puts items and awaits some of them as planned.

    For each item in order: awaiters planned ``before_put`` start, the item is put,
    then ``after_put`` awaiters start, then (after every task is blocked) ``in_batch``
    awaiters start. Task awaiters start before the first stage's own await at the same
    moment. Every await is recorded as an :class:`Awaiter` in ``awaiters``.

    Args:
        items: the items to put.
        plans: the awaits; ``index`` is a position in ``items``.
        outside: the task group for ``outside_task`` awaiters (one that outlives the
            pipeline, so that their outcome after the pipeline ends can be checked).
        fail_after: raise ``error`` after this many items were put.
        error: the exception to raise.

    Raises:
        ValueError: a plan names a missing item, or ``outside_task`` without ``outside``.
    """

    def __init__(
        self,
        items: Iterable[DeclarativeContent],
        plans: Iterable[AwaitPlan],
        *,
        outside: anyio.abc.TaskGroup | None = None,
        fail_after: int | None = None,
        error: Exception | None = None,
    ) -> None:
        super().__init__(items, fail_after=fail_after, error=error)
        self.plans = tuple(plans)
        self.outside = outside
        for plan in self.plans:
            if plan.index >= len(self.items_to_put):
                raise InvalidValueError(
                    f"PlannedAwaits: {plan!r} names item {plan.index}, "
                    f"but there are {len(self.items_to_put)} items"
                )
            if plan.awaiter == "outside_task" and outside is None:
                raise InvalidValueError(f"PlannedAwaits: {plan!r} needs the outside task group")
        #: One record per planned await, in the order they started.
        self.awaiters: list[Awaiter] = []

    async def _run(self) -> None:
        by_item: dict[int, list[AwaitPlan]] = {}
        for plan in self.plans:
            by_item.setdefault(plan.index, []).append(plan)
        async with anyio.create_task_group() as own:
            for index, item in enumerate(self.items_to_put):
                plans = by_item.get(index, [])
                for moment in _MOMENTS:
                    if moment == "after_put":
                        self._maybe_fail()
                        self.started_puts += 1
                        await self.put(item)
                        self.put_count += 1
                    now = [plan for plan in plans if plan.moment == moment]
                    if not now:
                        continue
                    if moment == "in_batch":
                        await anyio.wait_all_tasks_blocked()
                    for plan in now:
                        if plan.awaiter == "stage_task":
                            self.awaiters.append(await start_awaiter(own, item, plan))
                        elif plan.awaiter == "outside_task":
                            assert self.outside is not None
                            self.awaiters.append(await start_awaiter(self.outside, item, plan))
                    for plan in now:
                        if plan.awaiter == "first_stage":
                            awaiter = Awaiter(item, plan)
                            self.awaiters.append(awaiter)
                            await awaiter.run()


@attrs.frozen(eq=False)
class DiscoveryNode:
    """A unit in a discovery tree: what a first stage learns it must put next.

    Compared by identity, so equal-looking subtrees stay distinct.

    Attributes:
        name: a readable path such as ``"0/2/1"``.
        children: the units this one reveals once it is resolved.
    """

    name: str
    children: tuple[DiscoveryNode, ...] = ()

    def walk(self) -> list[DiscoveryNode]:
        """This node and all its descendants, parents before children (pre-order)."""
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes


class Discoverer(_FailingStage):
    """A first stage doing multi-level discovery over given trees.

    It puts each root, awaits its ``resolution()``, checks the content came back saved,
    and only then creates and puts the node's children; and so on down the trees. With
    ``concurrent=False`` it goes level by level (put a whole level, then await each of
    it); with ``concurrent=True`` every node gets its own task, as with ``gather`` in
    Pulp plugins.

    Attributes:
        item_for: the item put for each node, once it was put.
        node_for: the node of each item put.
        log: ``("put", node)`` and ``("resolved", node)`` events in the order they
            happened.
        exited: True once ``run`` has ended.
    """

    def __init__(
        self,
        roots: Sequence[DiscoveryNode],
        *,
        concurrent: bool = False,
        fail_after: int | None = None,
        error: Exception | None = None,
    ) -> None:
        super().__init__(fail_after=fail_after, error=error)
        self.roots = tuple(roots)
        self.concurrent = concurrent
        self.item_for: dict[DiscoveryNode, DeclarativeContent] = {}
        self.node_for: dict[DeclarativeContent, DiscoveryNode] = {}
        self.log: list[tuple[Literal["put", "resolved"], DiscoveryNode]] = []

    async def _put_node(self, node: DiscoveryNode) -> DeclarativeContent:
        item = DeclarativeContent(SampleContent(name=node.name))
        self.item_for[node] = item
        self.node_for[item] = node
        self.log.append(("put", node))
        await self._pass_on(item)
        return item

    async def _await_node(self, node: DiscoveryNode, item: DeclarativeContent) -> None:
        content = await item.resolution()
        if content is not item.content or not content.saved:
            raise AssertionError(f"resolution() of {node.name!r} returned {content!r}")
        self.log.append(("resolved", node))

    async def _run(self) -> None:
        if self.concurrent:
            async with anyio.create_task_group() as tg:
                for root in self.roots:
                    tg.start_soon(self._discover, root, tg)
            return
        level = list(self.roots)
        while level:
            items = [await self._put_node(node) for node in level]
            for node, item in zip(level, items, strict=True):
                await self._await_node(node, item)
            level = [child for node in level for child in node.children]

    async def _discover(self, node: DiscoveryNode, tg: anyio.abc.TaskGroup) -> None:
        item = await self._put_node(node)
        await self._await_node(node, item)
        for child in node.children:
            tg.start_soon(self._discover, child, tg)
