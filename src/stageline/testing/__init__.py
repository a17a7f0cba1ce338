"""Tools for testing stages: a harness, ready-made stages and Hypothesis strategies.

Run one stage in isolation with :func:`run_stage` (feed it a list, get back what it put)
or drive it step by step with :class:`StageHarness`. Both use the real engine
(``create_pipeline``), work on asyncio and trio, bound the run with a timeout, and let
the stage's own exception out unwrapped.

The strategies (``pipeline_shapes``, ``discovery_trees``, ``await_plans``, …) draw the
pipelines, discovery trees and await plans stageline's own property tests use; see
``docs/testing.md``. This module needs Hypothesis (``pip install stageline[testing]``).
"""

from ._content import SampleContent, sample_items
from ._harness import DEFAULT_TIMEOUT, StageHarness, run_stage
from ._stages import (
    Awaiter,
    AwaiterKind,
    AwaitMoment,
    AwaitPlan,
    BatchRecord,
    Collector,
    Discoverer,
    DiscoveryNode,
    Feeder,
    PassThrough,
    PlannedAwaits,
    Resolver,
    start_awaiter,
)
from ._strategies import (
    FailurePlan,
    PipelineShape,
    StageShape,
    await_plans,
    buffer_sizes,
    declarative_content_lists,
    declarative_contents,
    discovery_trees,
    failure_plans,
    minsizes,
    pipeline_shapes,
    sample_contents,
    stage_shapes,
    subsets,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "AwaitMoment",
    "AwaitPlan",
    "Awaiter",
    "AwaiterKind",
    "BatchRecord",
    "Collector",
    "Discoverer",
    "DiscoveryNode",
    "FailurePlan",
    "Feeder",
    "PassThrough",
    "PipelineShape",
    "PlannedAwaits",
    "Resolver",
    "SampleContent",
    "StageHarness",
    "StageShape",
    "await_plans",
    "buffer_sizes",
    "declarative_content_lists",
    "declarative_contents",
    "discovery_trees",
    "failure_plans",
    "minsizes",
    "pipeline_shapes",
    "run_stage",
    "sample_contents",
    "sample_items",
    "stage_shapes",
    "start_awaiter",
    "subsets",
]
