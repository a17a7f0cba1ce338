"""``create_pipeline``: run stages as tasks of one task group, joined by channels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import anyio
import anyio.lowlevel

from ._channel import ReceiveEnd, create_channel
from ._exceptions import StageConfigurationError
from ._resolvable import PipelineItem, pipeline_context
from ._stage import EndStage, Stage, running_checkpoint

__all__ = ["DEFAULT_MAXSIZE", "create_pipeline"]

#: The default buffer between two stages. Large enough that a stage usually sends and
#: receives without a scheduler round trip; small enough that memory stays bounded by
#: (stages x maxsize) items whatever the repository's size.
DEFAULT_MAXSIZE: Final = 128


class _Pipeline:
    """What the engine keeps about one running pipeline: the items somebody awaits.

    The :class:`~stageline.PipelineHandle` that items are given by ``enter_pipeline``.
    """

    __slots__ = ("_ended", "_watched")

    def __init__(self) -> None:
        # By identity: an item class may define __eq__ (attrs does by default), which
        # would make its items unhashable, or equal to one another.
        self._watched: dict[int, PipelineItem] = {}
        self._ended: tuple[str, BaseException | None] | None = None

    def watch(self, item: PipelineItem) -> None:
        if self._ended is not None:
            # Awaited only after the pipeline ended: nothing can resolve it any more, and
            # close() has already run, so tell the waiter now instead of never.
            item.pipeline_ended(*self._ended)
            return
        self._watched[id(item)] = item

    def unwatch(self, item: PipelineItem) -> None:
        self._watched.pop(id(item), None)

    def close(self, message: str, failure: BaseException | None) -> None:
        """Wake every waiter of an item the pipeline did not resolve; they get an error.

        Whoever starts waiting for such an item later gets the same error at once.
        """
        self._ended = (message, failure)
        watched, self._watched = self._watched, {}
        for item in watched.values():
            item.pipeline_ended(message, failure)


async def create_pipeline(stages: Iterable[Stage], maxsize: int = DEFAULT_MAXSIZE) -> None:
    """Run ``stages`` as one linear pipeline and return when every stage is done.

    Every stage runs as a task of one task group. Neighbours are joined by a memory
    object stream holding up to ``maxsize`` items, so a fast stage can never run ahead of
    a slow one by more than the buffers allow. A stage's output is closed when its
    ``run`` returns. An :class:`EndStage` is appended to drain the last stream unless the
    list already ends with one.

    When a stage raises, every other stage is cancelled and ``create_pipeline`` raises
    that exception itself (not wrapped); when several stages fail at once it raises an
    :class:`ExceptionGroup` of them. Cancellation from outside stops every stage the same
    way. Either way, no stage task is left running, and any task awaiting
    ``resolution()`` of an item that was not resolved gets a :class:`PipelineError`.

    Args:
        stages: the stage instances, first to last; at least one, each at most once.
        maxsize: the buffer size of each stream between two stages (an int >= 0).

    Raises:
        StageConfigurationError: (a ``ValueError``) no stages, something that is not a
            ``Stage``, the same stage twice, a stage already running in another pipeline,
            or a bad ``maxsize``.
        Exception: whatever a stage raised.
    """
    stage_list = _check_stages(stages)
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
        raise StageConfigurationError(f"maxsize must be an int >= 0, got {maxsize!r}")
    if not isinstance(stage_list[-1], EndStage):
        stage_list.append(EndStage())

    pipeline = _Pipeline()
    _connect(stage_list, pipeline, maxsize)
    finished = False
    failure: BaseException | None = None
    single: BaseException | None = None
    try:
        try:
            async with anyio.create_task_group() as tg:
                for stage in stage_list:
                    tg.start_soon(_run_stage, stage, name=f"stageline stage {stage!r}")
        except BaseExceptionGroup as group:
            failure = group
            leaves = _leaves(group)
            if len(leaves) != 1:
                raise
            single = failure = leaves[0]
        else:
            finished = True
    finally:
        for stage in stage_list:
            # Streams left open by a failed stage are closed here, after every task ended.
            if stage._input is not None:
                stage._input.close()
            if stage._output is not None:
                stage._output.close()
            stage._input = stage._output = None
            stage._pipeline = None
            stage._checkpoint = anyio.lowlevel.checkpoint
        if finished:
            pipeline.close("the pipeline finished without resolving this item", None)
        else:
            pipeline.close(
                "the pipeline failed or was cancelled before resolving this item", failure
            )
    if single is not None:
        # Raised outside the except block so that the group does not become the
        # exception's __context__: the caller sees the stage's own exception and chain.
        raise single


def _check_stages(stages: Iterable[Stage]) -> list[Stage]:
    if isinstance(stages, Stage):
        raise StageConfigurationError(
            "create_pipeline() takes a list of stages, got a single stage; wrap it in a list"
        )
    stage_list = list(stages)
    if not stage_list:
        raise StageConfigurationError("create_pipeline() needs at least one stage, got none")
    seen: set[int] = set()
    for position, stage in enumerate(stage_list):
        if not isinstance(stage, Stage):
            raise StageConfigurationError(
                f"stage {position} is not a Stage instance: got {stage!r}"
                + (" (a class; instantiate it)" if isinstance(stage, type) else "")
            )
        if id(stage) in seen:
            raise StageConfigurationError(
                f"the same stage instance appears twice in the pipeline: {stage!r} at position "
                f"{position}; create one instance per position"
            )
        seen.add(id(stage))
        if stage._pipeline is not None:
            raise StageConfigurationError(f"{stage!r} is already running in another pipeline")
    return stage_list


def _connect(stages: list[Stage], pipeline: _Pipeline, maxsize: int) -> None:
    receive: ReceiveEnd | None = None
    checkpoint = running_checkpoint()
    for index, stage in enumerate(stages):
        stage._pipeline = pipeline
        stage._ops = 0
        stage._checkpoint = checkpoint
        stage._input = receive
        if index == len(stages) - 1:
            stage._output = None
        else:
            stage._output, receive = create_channel(maxsize)


async def _run_stage(stage: Stage) -> None:
    send, receive = stage._output, stage._input
    # Set in this task's own context (and inherited by tasks the stage starts).
    pipeline_context.set(stage._pipeline)
    try:
        await stage.run()
    finally:
        # Closing the output ends the next stage's iteration once it has read the buffer.
        if send is not None:
            send.close()
    # A stage that returned normally may have left input unread: closing it makes a
    # previous stage that still puts fail clearly instead of blocking forever. (A stage
    # that raised leaves it open: the task group cancels the others, and a second,
    # derived error would hide the first.)
    if receive is not None:
        receive.close()


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            leaves.extend(_leaves(exc))
        else:
            leaves.append(exc)
    return leaves
