"""``create_pipeline`` as the asyncio era used it, futures, declarative objects, mixing.

Asyncio-only by nature: the shim is the asyncio API (see conftest.py); the one Trio test
checks that the shim refuses Trio clearly.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any
from unittest import mock

import anyio
import pytest

import stageline
import stageline_compat
from stageline import PipelineError, StageConfigurationError, UsageError
from stageline.models import Artifact
from stageline_compat import (
    ContentSaver,
    DeclarativeArtifact,
    DeclarativeContent,
    EndStage,
    ResolveContentFutures,
    Stage,
    create_pipeline,
)

from ..stages import HANG_TIMEOUT, Collect, Feed, PassBatches, PassItems

pytestmark = pytest.mark.anyio


class Put(Stage):
    """A shimmed first stage putting the given items."""

    def __init__(self, items: list[Any]) -> None:
        self.items_to_put = items

    async def run(self) -> None:
        for item in self.items_to_put:
            await self.put(item)


class Gather(Stage):
    """A shimmed last stage collecting what it reads."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def run(self) -> None:
        async for item in self.items():
            self.seen.append(item)


def test_create_pipeline_runs_under_asyncio_run() -> None:
    """create_pipeline(stages) is a coroutine asyncio.run can run."""
    gather = Gather()
    asyncio.run(create_pipeline([Put(list(range(20))), gather]))
    assert gather.seen == list(range(20))


def test_create_pipeline_runs_under_run_until_complete() -> None:
    """create_pipeline(stages, maxsize=1) runs on an event loop's run_until_complete."""
    gather = Gather()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(create_pipeline([Put(list(range(20))), gather], maxsize=1))
    finally:
        loop.close()
    assert gather.seen == list(range(20))


async def test_a_failing_stage_cancels_the_others_and_its_error_is_raised() -> None:
    """One stage's exception cancels every other stage and is re-raised as it is."""
    cancelled: list[str] = []
    failure = LookupError("no such index")
    started = asyncio.Event()

    class Waits(Stage):
        async def run(self) -> None:
            try:
                started.set()
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append("waits")
                raise

    class Fails(Stage):
        async def run(self) -> None:
            await started.wait()
            raise failure

    with anyio.fail_after(HANG_TIMEOUT):
        with pytest.raises(LookupError) as raised:
            await create_pipeline([Waits(), Fails()])
    assert raised.value is failure
    assert cancelled == ["waits"]


async def test_run_may_use_asyncio_freely() -> None:
    """ensure_future, gather, wait, Queue, Event and sleep all work inside run()."""

    class Busy(Stage):
        async def run(self) -> None:
            work: asyncio.Queue[int] = asyncio.Queue()
            ready = asyncio.Event()

            async def double(n: int) -> int:
                await ready.wait()
                await asyncio.sleep(0)
                await work.put(n)
                return 2 * n

            async for batch in self.batches(minsize=4):
                tasks = [asyncio.ensure_future(double(n)) for n in batch]
                ready.set()
                done, _ = await asyncio.wait(tasks)
                assert len(done) == len(batch)
                for result in await asyncio.gather(*tasks):
                    await self.put(result)
                ready.clear()
            assert work.qsize() == 10

    with anyio.fail_after(HANG_TIMEOUT):
        gather = Gather()
        await create_pipeline([Put(list(range(10))), Busy(), gather])
        assert gather.seen == [2 * n for n in range(10)]


async def test_native_and_shimmed_stages_mix_in_the_shims_pipeline() -> None:
    """stageline's own stages and shimmed ones run together in the shim's create_pipeline."""

    class Square(Stage):
        async def run(self) -> None:
            async for item in self.items():
                await self.put(item * item)

    with anyio.fail_after(HANG_TIMEOUT):
        gather = Gather()
        await create_pipeline(
            [Feed(range(50)), PassBatches(minsize=7), Square(), PassItems(), gather], maxsize=2
        )
        assert gather.seen == [n * n for n in range(50)]


async def test_shimmed_stages_run_in_stagelines_own_pipeline() -> None:
    """Under asyncio, stageline.create_pipeline runs shimmed stages beside native ones."""

    class Tag(Stage):
        async def run(self) -> None:
            async for item in self.items():
                await asyncio.sleep(0)
                await self.put(("tagged", item))

    with anyio.fail_after(HANG_TIMEOUT):
        collect = Collect()
        await stageline.create_pipeline([Feed(range(30)), Tag(), PassBatches(minsize=4), collect])
        assert collect.items_seen == [("tagged", n) for n in range(30)]


async def test_a_shimmed_middle_stage_between_native_ones() -> None:
    """A shimmed pass-through stage between native ones delivers every item in order."""

    class Pass(Stage):
        async def run(self) -> None:
            async for batch in self.batches(minsize=3):
                for item in batch:
                    await self.put(item)

    with anyio.fail_after(HANG_TIMEOUT):
        collect = Collect()
        await create_pipeline([Feed(range(40)), Pass(), PassItems(), collect], maxsize=1)
        assert collect.items_seen == list(range(40))


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_the_shims_pipeline_refuses_trio() -> None:
    """Under Trio, the shim's create_pipeline says it is asyncio-only and what to use."""
    with pytest.raises(UsageError, match=r"stageline\.create_pipeline"):
        await create_pipeline([Put([1])])


async def test_the_future_gets_the_content_when_the_item_is_resolved() -> None:
    """get_or_create_future() made in a first stage is fulfilled by ResolveContentFutures."""
    results: list[Any] = []

    class Declare(Stage):
        async def run(self) -> None:
            d = DeclarativeContent(mock.Mock())
            future = d.get_or_create_future()
            await self.put(d)
            results.append(await future is d.content)

    with anyio.fail_after(HANG_TIMEOUT):
        await create_pipeline(
            [Declare(), PassBatches(minsize=100), ResolveContentFutures(), EndStage()]
        )
    assert results == [True]


async def test_the_future_of_an_item_never_resolved_fails_when_the_pipeline_ends() -> None:
    """A future whose item the pipeline dropped gets a PipelineError, not a hang."""
    futures: list[asyncio.Future[Any]] = []

    class Declare(Stage):
        async def run(self) -> None:
            d = DeclarativeContent(mock.Mock())
            futures.append(d.get_or_create_future())
            await self.put(d)

    with anyio.fail_after(HANG_TIMEOUT):
        await create_pipeline([Declare()])
        with pytest.raises(PipelineError, match="without resolving"):
            await futures[0]


async def test_a_resolved_items_future_is_done_at_once() -> None:
    """get_or_create_future() on a resolved item returns a future already holding it."""
    d = DeclarativeContent(mock.Mock())
    d.resolve()
    future = d.get_or_create_future()
    assert future.done()
    assert future.result() is d.content
    assert await d.resolution() is d.content


def test_get_or_create_future_needs_a_running_asyncio_loop() -> None:
    """Outside an event loop the future cannot be made; the error says why."""
    with pytest.raises(UsageError, match="asyncio"):
        DeclarativeContent(object()).get_or_create_future()


def test_declarative_content_takes_any_object_as_content() -> None:
    """Plain objects and mocks are accepted as content; None is not."""
    thing = object()
    assert DeclarativeContent(thing).content is thing
    with pytest.raises(ValueError, match="content is required"):
        DeclarativeContent(None)


def test_declarative_artifact_takes_positional_arguments_and_a_mock_artifact() -> None:
    """DeclarativeArtifact(artifact, url, relative_path, remote); url is the first of urls."""
    artifact = mock.Mock()
    remote = mock.Mock()
    da = DeclarativeArtifact(artifact, "https://example.org/a", "a.txt", remote)
    assert (da.artifact, da.url, da.urls, da.relative_path) == (
        artifact,
        "https://example.org/a",
        ("https://example.org/a",),
        "a.txt",
    )
    assert da.deferred_download is None  # follows the remote's policy
    mirrors = DeclarativeArtifact(
        Artifact(), relative_path="b.txt", remote=remote, urls=["https://m1/b", "https://m2/b"]
    )
    assert mirrors.url == "https://m1/b"


async def test_a_stage_made_without_its_store_outside_a_sync_says_what_to_pass() -> None:
    """ContentSaver() outside a shimmed sync fails when it starts, naming the argument."""
    with anyio.fail_after(HANG_TIMEOUT):
        with pytest.raises(StageConfigurationError, match=r"ContentSaver\(store=\.\.\.\)"):
            await create_pipeline([Put([]), ContentSaver()])


def test_every_public_name_is_exported() -> None:
    """stageline_compat's __all__ lists what it defines, and each name imports."""
    module = importlib.import_module("stageline_compat")
    for name in module.__all__:
        assert hasattr(module, name), name
    defined = {
        name
        for name, value in vars(stageline_compat).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("stageline_compat")
    }
    assert defined <= set(module.__all__)
    wanted = {
        "Stage",
        "EndStage",
        "create_pipeline",
        "DeclarativeContent",
        "DeclarativeArtifact",
        "DeclarativeVersion",
        "QueryExistingContents",
        "QueryExistingArtifacts",
        "ArtifactDownloader",
        "ArtifactSaver",
        "ContentSaver",
        "RemoteArtifactSaver",
        "ResolveContentFutures",
        "ContentAssociation",
        "ContentUnassociation",
        "ArtifactResourceBudget",
        "GenericDownloader",
        "ACSArtifactHandler",
        "ProgressReport",
    }
    assert wanted <= set(module.__all__)
