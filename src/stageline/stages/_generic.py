"""``GenericDownloader``: the base of download stages, many units at once, output in order."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Final

import anyio
from anyio.abc import TaskGroup

from .._declarative import DeclarativeContent
from .._exceptions import StageConfigurationError
from .._stage import Stage
from ._failures import DownloadFailurePolicy

if TYPE_CHECKING:
    from ._budget import ArtifactResourceBudget

__all__ = ["DEFAULT_MAX_CONCURRENT_CONTENT", "GenericDownloader", "run_all"]

#: How many units a download stage handles at once unless told otherwise.
DEFAULT_MAX_CONCURRENT_CONTENT: Final = 200


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StageConfigurationError(f"{name} must be an int >= 1, got {value!r}")
    return value


class _Slot:
    """One unit in the stage's window, from when it was read until it is put on."""

    __slots__ = ("d_content", "done", "finished", "skipped")

    def __init__(self, d_content: DeclarativeContent, *, finished: bool) -> None:
        self.d_content = d_content
        self.finished = finished
        self.skipped = False
        self.done: anyio.Event | None = None if finished else anyio.Event()


class GenericDownloader(Stage):
    """Base class of download stages: handles many units at once and keeps their order.

    Subclass it and implement :meth:`_handle_content_unit` (and, to let units with
    nothing to do through without a task each, :meth:`_needs_handling`). The stage reads
    its input one item at a time and starts a task per unit, with at most
    ``max_concurrent_content`` of them running at once; it puts the units on in the
    order it read them. At most ``2 * max_concurrent_content`` units wait between being
    read and being put on (behind a slow one), which bounds the stage's memory.

    When a unit fails, the failure policy decides (see :class:`DownloadFailurePolicy`):
    by default the stage cancels every other download it started and raises that
    error, unwrapped. A skipped unit is not put on; a task awaiting its
    ``resolution()`` gets a :class:`~stageline.PipelineError` whose ``__cause__`` is
    the download error.

    Args:
        max_concurrent_content: at most this many units handled at once (an int >= 1).
        failure_policy: what a failed unit does; None fails the stage at the first one.
        budget: the :class:`ArtifactResourceBudget` placed before this stage, if any: a
            skipped unit releases what it acquired there, since it never reaches
            :class:`ArtifactSaver`, which releases the others.

    Attributes:
        downloaded: how many files the stage downloaded so far (the sum of what
            :meth:`_handle_content_unit` returned).

    Raises:
        StageConfigurationError: (a ``ValueError``) ``max_concurrent_content`` < 1.
    """

    def __init__(
        self,
        max_concurrent_content: int = DEFAULT_MAX_CONCURRENT_CONTENT,
        *,
        failure_policy: DownloadFailurePolicy | None = None,
        budget: ArtifactResourceBudget | None = None,
    ) -> None:
        self.max_concurrent_content = _positive("max_concurrent_content", max_concurrent_content)
        self.failure_policy = failure_policy or DownloadFailurePolicy()
        self.budget = budget
        self.downloaded = 0

    async def _handle_content_unit(self, d_content: DeclarativeContent) -> int:
        """Do this stage's downloads for one unit. Subclasses must implement it.

        It runs in a task of its own, next to up to ``max_concurrent_content - 1``
        others; it may change ``d_content`` (its artifacts, typically).

        Returns:
            How many files it downloaded.

        Raises:
            DownloadError: a download failed (the failure policy decides what follows).
            NotImplementedError: when not overridden.
        """
        raise NotImplementedError(
            f"{type(self).__qualname__} must implement "
            "'async def _handle_content_unit(self, d_content) -> int'"
        )

    def _needs_handling(self, d_content: DeclarativeContent) -> bool:
        """Whether :meth:`_handle_content_unit` has anything to do for ``d_content``.

        Units for which this is False are put on in order without a task. Subclasses may
        override it; the default says True for every unit.
        """
        return True

    def _unit_urls(self, d_content: DeclarativeContent) -> tuple[str, ...]:
        """The urls a failed unit is reported with (every url of its artifacts).

        Subclasses may narrow it to the files they download.
        """
        return tuple(url for da in d_content.d_artifacts for url in da.all_urls)

    async def run(self) -> None:
        """Handle every unit, at most ``max_concurrent_content`` at once, in order.

        Raises:
            Exception: what a unit's handling raised, when the failure policy does not
                skip the unit.
        """
        failures: list[Exception] = []
        running = anyio.Semaphore(self.max_concurrent_content)
        window = _Window(2 * self.max_concurrent_content)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._emit, window)
            async for d_content in self.items():
                while window.is_full():
                    await window.wait_for_space()
                if self._needs_handling(d_content):
                    # Taken here, not in the task: units start in the order they were read
                    # (a new task's first step may run before an older one's).
                    try:
                        running.acquire_nowait()
                    except anyio.WouldBlock:
                        await running.acquire()
                    slot = _Slot(d_content, finished=False)
                    tg.start_soon(self._handle, slot, running, failures, tg)
                elif not window.slots and not window.emitting:
                    # Nothing read before it is still waiting to be put on: put it on
                    # here, without a slot and a hand-over to the emitter (a unit with
                    # nothing to download, and so every unit of an on-demand sync).
                    await self.put(d_content)
                    continue
                else:
                    slot = _Slot(d_content, finished=True)
                window.push(slot)
            window.end()
        if failures:
            raise failures[0]

    async def _handle(
        self, slot: _Slot, running: anyio.Semaphore, failures: list[Exception], tg: TaskGroup
    ) -> None:
        try:
            try:
                count = await self._handle_content_unit(slot.d_content)
            finally:
                running.release()
        except Exception as exc:
            d_content = slot.d_content
            if not self.failure_policy.skip(d_content.content, self._unit_urls(d_content), exc):
                failures.append(exc)
                # The first failure is the one raised; the others' downloads are cancelled.
                tg.cancel_scope.cancel()
                return
            slot.skipped = True
            if self.budget is not None:
                self.budget.release([d_content])
            _give_up_on(d_content, exc)
        else:
            self.downloaded += count
        slot.finished = True
        assert slot.done is not None
        slot.done.set()

    async def _emit(self, window: _Window) -> None:
        """Put each unit on, in read order, once its handling finished."""
        slots = window.slots
        while True:
            if slots:
                slot = slots[0]
                if not slot.finished:
                    assert slot.done is not None
                    await slot.done.wait()
                slots.popleft()
                window.freed()
                if not slot.skipped:
                    # While this put waits, the reader must not put a later unit past it.
                    window.emitting = True
                    try:
                        await self.put(slot.d_content)
                    finally:
                        window.emitting = False
            elif window.ended:
                return
            else:
                await window.wait_for_work()


class _Window:
    """The units between being read and being put on, in read order.

    One task (the reader) pushes, another (the emitter) pops; a deque and an event made
    only when one of them must wait cost far less per unit than a stream and a
    semaphore, which each pass through the scheduler.
    """

    __slots__ = ("_space", "_work", "emitting", "ended", "size", "slots")

    def __init__(self, size: int) -> None:
        self.size = size
        self.slots: deque[_Slot] = deque()
        self.ended = False
        # True while the emitter puts a unit on (the reader then queues, to keep order).
        self.emitting = False
        self._space: anyio.Event | None = None
        self._work: anyio.Event | None = None

    def is_full(self) -> bool:
        return len(self.slots) >= self.size

    def push(self, slot: _Slot) -> None:
        self.slots.append(slot)
        self._wake_emitter()

    def end(self) -> None:
        self.ended = True
        self._wake_emitter()

    def freed(self) -> None:
        if self._space is not None:
            self._space.set()
            self._space = None

    async def wait_for_space(self) -> None:
        self._space = anyio.Event()
        await self._space.wait()

    async def wait_for_work(self) -> None:
        self._work = anyio.Event()
        await self._work.wait()

    def _wake_emitter(self) -> None:
        if self._work is not None:
            self._work.set()
            self._work = None


def _give_up_on(d_content: DeclarativeContent, error: Exception) -> None:
    """Wake whoever awaits a skipped unit's ``resolution()`` with a PipelineError.

    The unit leaves the stream here, so nothing will ever resolve it; a first stage
    awaiting it (multi-level discovery) would otherwise wait forever, since the pipeline
    cannot end while its first stage waits.
    """
    # The item protocol's way to wake waiters of an item nothing will resolve.
    d_content.pipeline_ended(
        f"{d_content.content.type_name} {d_content.content.natural_key()!r} was skipped: "
        f"its download failed ({type(error).__name__}: {error})",
        error,
    )


async def run_all(jobs: Sequence[Callable[[], Awaitable[None]]]) -> None:
    """Run ``jobs`` concurrently; on the first failure cancel the rest and raise it unwrapped.

    One job runs inline (no task). The error is the first to happen, never an
    ``ExceptionGroup``, so that a unit's download error reaches the failure policy as is.

    Raises:
        Exception: the first exception a job raised.
    """
    if len(jobs) == 1:
        await jobs[0]()
        return
    failures: list[Exception] = []

    async def run(job: Callable[[], Awaitable[None]], tg: TaskGroup) -> None:
        try:
            await job()
        except Exception as exc:
            failures.append(exc)
            tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        for job in jobs:
            tg.start_soon(run, job, tg)
    if failures:
        raise failures[0]
