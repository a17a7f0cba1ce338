"""Hypothesis strategies for property tests of stages and pipelines.

Every strategy stageline's own property tests use lives here, so a plugin author can
draw the same shapes, trees and plans for their stages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import attrs
from hypothesis import strategies as st

from .._declarative import DeclarativeContent
from .._exceptions import InvalidValueError
from ..models import Content
from ._content import SampleContent
from ._stages import AwaiterKind, AwaitMoment, AwaitPlan, DiscoveryNode, PassThrough

__all__ = [
    "FailurePlan",
    "PipelineShape",
    "StageShape",
    "await_plans",
    "buffer_sizes",
    "declarative_content_lists",
    "declarative_contents",
    "discovery_trees",
    "failure_plans",
    "minsizes",
    "pipeline_shapes",
    "sample_contents",
    "stage_shapes",
    "subsets",
]

T = TypeVar("T")


def sample_contents(
    names: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[SampleContent]:
    """:class:`SampleContent` units; ``names`` draws the name (short text by default)."""
    if names is None:
        names = st.text(max_size=8)
    return st.builds(SampleContent, name=names)


def declarative_contents(
    contents: st.SearchStrategy[Content] | type[Content] | None = None,
) -> st.SearchStrategy[DeclarativeContent]:
    """Fresh :class:`DeclarativeContent` items (no artifacts) wrapping drawn content.

    Args:
        contents: a strategy for the content, or a content type to build with
            ``hypothesis.strategies.builds`` (its fields need type hints Hypothesis can
            draw from, or defaults; pass a strategy otherwise); :func:`sample_contents`
            by default. Drawn units are unsaved (``pk`` is None).
    """
    if contents is None:
        strategy: st.SearchStrategy[Content] = sample_contents()
    elif isinstance(contents, type):
        # Content types are usually declared under `from __future__ import annotations`:
        # give Hypothesis the real field types. Units are drawn unsaved (no pk).
        attrs.resolve_types(contents)
        strategy = st.builds(contents, pk=st.none())
    else:
        strategy = contents
    return strategy.map(DeclarativeContent)


def declarative_content_lists(
    *,
    min_size: int = 0,
    max_size: int = 50,
    contents: st.SearchStrategy[Content] | type[Content] | None = None,
) -> st.SearchStrategy[list[DeclarativeContent]]:
    """Lists of distinct :class:`DeclarativeContent` items (see :func:`declarative_contents`)."""
    return st.lists(declarative_contents(contents), min_size=min_size, max_size=max_size)


def subsets(elements: Sequence[T]) -> st.SearchStrategy[list[T]]:
    """Sub-sequences of ``elements``: any subset, in the original order."""
    chosen = st.lists(st.booleans(), min_size=len(elements), max_size=len(elements))
    return chosen.map(lambda mask: [e for e, keep in zip(elements, mask, strict=True) if keep])


def minsizes(*, max_minsize: int = 10_000) -> st.SearchStrategy[int]:
    """``batches(minsize=...)`` values: mostly small (so batches fill), up to ``max_minsize``.

    Small sizes make full batches likely; large ones make every batch wait for the end
    of input, an awaiter or a flush.
    """
    if max_minsize < 1:
        raise InvalidValueError(f"max_minsize must be >= 1, got {max_minsize!r}")
    return st.one_of(
        st.integers(1, min(8, max_minsize)),
        st.integers(1, max_minsize),
        st.sampled_from(sorted({1, min(500, max_minsize), max_minsize})),
    )


def buffer_sizes(*, max_buffer: int = 128) -> st.SearchStrategy[int]:
    """``create_pipeline(maxsize=...)`` values: 0 (unbuffered), small, or up to ``max_buffer``."""
    return st.one_of(st.integers(0, min(4, max_buffer)), st.integers(0, max_buffer))


@attrs.frozen
class StageShape:
    """How a middle stage reads: ``minsize=None`` for ``items()``, else ``batches(minsize)``."""

    minsize: int | None = None

    def build(self, **kwargs: Any) -> PassThrough:
        """A :class:`PassThrough` of this shape; ``kwargs`` go to its constructor."""
        return PassThrough(minsize=self.minsize, **kwargs)


def stage_shapes(*, max_minsize: int = 10_000) -> st.SearchStrategy[StageShape]:
    """Middle-stage shapes: ``items()`` or ``batches()`` with a drawn minsize."""
    return st.one_of(
        st.just(StageShape(None)), st.builds(StageShape, minsize=minsizes(max_minsize=max_minsize))
    )


@attrs.frozen
class PipelineShape:
    """A drawn pipeline: how many items, which middle stages, which buffer size.

    Attributes:
        item_count: how many items the first stage puts.
        stages: the middle stages, first to last.
        maxsize: the buffer between two stages (``create_pipeline(maxsize=...)``).
    """

    item_count: int
    stages: tuple[StageShape, ...]
    maxsize: int

    def build(self, **kwargs: Any) -> list[PassThrough]:
        """One fresh :class:`PassThrough` per middle stage; ``kwargs`` go to each."""
        return [shape.build(**kwargs) for shape in self.stages]


def pipeline_shapes(
    *,
    min_items: int = 0,
    max_items: int = 200,
    max_stages: int = 4,
    max_minsize: int = 10_000,
    max_buffer: int = 128,
) -> st.SearchStrategy[PipelineShape]:
    """Pipelines of 0 to ``max_stages`` middle stages mixing ``items()`` and ``batches()``."""
    return st.builds(
        PipelineShape,
        item_count=st.integers(min_items, max_items),
        stages=st.lists(stage_shapes(max_minsize=max_minsize), max_size=max_stages).map(tuple),
        maxsize=buffer_sizes(max_buffer=max_buffer),
    )


def _tree_shapes(depth: int, width: int) -> st.SearchStrategy[tuple[Any, ...]]:
    if depth == 0:
        return st.just(())
    return st.lists(_tree_shapes(depth - 1, width), max_size=width).map(tuple)


def _name_tree(name: str, shape: tuple[Any, ...]) -> DiscoveryNode:
    return DiscoveryNode(
        name, tuple(_name_tree(f"{name}/{i}", child) for i, child in enumerate(shape))
    )


def discovery_trees(
    max_depth: int = 3, max_width: int = 3, *, root_name: str = "0"
) -> st.SearchStrategy[DiscoveryNode]:
    """Trees of :class:`DiscoveryNode`: a root with up to ``max_depth`` levels below it.

    Every node has up to ``max_width`` children; node names are their paths from
    ``root_name``.

    Raises:
        ValueError: when ``max_depth`` or ``max_width`` is negative.
    """
    if max_depth < 0 or max_width < 0:
        raise InvalidValueError(
            f"discovery_trees: max_depth and max_width must be >= 0, "
            f"got {max_depth!r} and {max_width!r}"
        )
    return _tree_shapes(max_depth, max_width).map(lambda shape: _name_tree(root_name, shape))


_KINDS: tuple[AwaiterKind, ...] = ("first_stage", "stage_task", "outside_task")
_MOMENTS: tuple[AwaitMoment, ...] = ("before_put", "after_put", "in_batch")


def await_plans(
    item_count: int,
    *,
    awaiters: Sequence[AwaiterKind] = _KINDS,
    moments: Sequence[AwaitMoment] = _MOMENTS,
    max_plans: int | None = None,
) -> st.SearchStrategy[list[AwaitPlan]]:
    """Plans of ``resolution()`` calls on any subset of ``item_count`` items.

    An item may be awaited several times, by different awaiters at different moments.
    Combinations :class:`AwaitPlan` rejects (the first stage awaiting before it puts)
    are never drawn.

    Args:
        item_count: how many items there are.
        awaiters: the kinds of awaiter to draw from.
        moments: the moments to draw from.
        max_plans: at most this many plans (default: twice the item count).
    """
    if item_count == 0:
        return st.just([])
    combos = [
        (kind, moment)
        for kind in awaiters
        for moment in moments
        if not (kind == "first_stage" and moment == "before_put")
    ]
    if not combos:
        raise InvalidValueError(
            f"await_plans: no valid combination of {awaiters!r} and {moments!r}"
        )
    plan = st.builds(
        lambda index, combo: AwaitPlan(index, combo[0], combo[1]),
        st.integers(0, item_count - 1),
        st.sampled_from(combos),
    )
    limit = 2 * item_count if max_plans is None else max_plans
    return st.lists(plan, max_size=limit)


@attrs.frozen
class FailurePlan:
    """Where a pipeline fails: stage ``stage_index`` raises after putting ``after_items``."""

    stage_index: int
    after_items: int


def failure_plans(stage_count: int, *, max_items: int) -> st.SearchStrategy[FailurePlan]:
    """Any stage of ``stage_count`` failing after any number of items up to ``max_items``.

    Raises:
        ValueError: when ``stage_count`` is not positive.
    """
    if stage_count < 1:
        raise InvalidValueError(f"failure_plans: stage_count must be >= 1, got {stage_count!r}")
    return st.builds(
        FailurePlan,
        stage_index=st.integers(0, stage_count - 1),
        after_items=st.integers(0, max_items),
    )
