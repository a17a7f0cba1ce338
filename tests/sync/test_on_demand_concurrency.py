"""On-demand fetching under concurrency and cancellation: one download per file, no leftovers."""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from stageline import HTTPStatusError, Workspace
from stageline.download import DownloaderFactory, DownloadResult, HttpDownloader
from stageline.models import DownloadPolicy
from stageline.sync import ContentFetcher, open_content_fetcher

from ..download._servers import stall
from ._on_demand_support import FILES, files_in_area, gated, read_file, synced, wait_for_a_file
from ._plugin import Upstream
from ._support import content_artifacts, leftover_temporary_files

pytestmark = pytest.mark.anyio


async def test_twenty_concurrent_opens_of_a_deferred_file_make_one_request(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """Opens waiting on one download all read the saved file; upstream is asked once."""
    await synced(any_workspace, upstream)
    gate = threading.Event()
    upstream.server.route("/repo/a", gated(FILES["a"], gate))
    results: list[tuple[bytes, str | None]] = []
    async with open_content_fetcher(any_workspace) as fetcher:
        found = await fetcher.find(await fetcher.find_version("files"), "a")

        async def open_one(by_path: bool) -> None:
            if by_path:
                results.append(await read_file(fetcher, "a"))
                return
            async with fetcher.open(found) as opened:
                results.append((await opened.read(), opened.fetched_from))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for n in range(20):
                    tg.start_soon(open_one, n % 2 == 1)
                await anyio.wait_all_tasks_blocked()
                gate.set()
        assert files_in_area(fetcher.temporary_area) == []
    assert len(results) == 20
    assert {data for data, _url in results} == {FILES["a"]}
    assert {url for _data, url in results} <= {upstream.url("a"), None}
    assert len(upstream.server.requests_for("/repo/a")) == 1
    assert (await content_artifacts(any_workspace))["a"].artifact is not None


async def test_concurrent_opens_of_a_streamed_file_share_one_copy(
    workspace: Workspace, upstream: Upstream
) -> None:
    """Ten readers share one download; a waiter cancelled early holds nothing; then it goes."""
    await synced(workspace, upstream, DownloadPolicy.STREAMED)
    gate = threading.Event()
    upstream.server.route("/repo/dir/b", gated(FILES["dir/b"], gate))
    all_open = anyio.Event()
    opened_count = 0
    read: list[bytes] = []
    async with open_content_fetcher(workspace) as fetcher:
        found = await fetcher.find(await fetcher.find_version("files"), "dir/b")

        async def reader() -> None:
            nonlocal opened_count
            async with fetcher.open(found) as opened:
                opened_count += 1
                if opened_count == 10:
                    all_open.set()
                await all_open.wait()
                assert len(files_in_area(fetcher.temporary_area)) == 1
                read.append(await opened.read())

        async def given_up() -> None:
            async with fetcher.open(found):
                raise AssertionError("the cancelled waiter opened the file")

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(10):
                    tg.start_soon(reader)
                await anyio.wait_all_tasks_blocked()  # a reader leads the download
                async with anyio.create_task_group() as early:
                    early.start_soon(given_up)
                    await anyio.wait_all_tasks_blocked()
                    early.cancel_scope.cancel()
                gate.set()
        assert read == [FILES["dir/b"]] * 10
        assert files_in_area(fetcher.temporary_area) == []
    assert len(upstream.server.requests_for("/repo/dir/b")) == 1
    assert (await content_artifacts(workspace))["dir/b"].artifact is None


async def test_an_error_of_the_shared_download_reaches_every_waiter(
    workspace: Workspace, upstream: Upstream
) -> None:
    """Every opener waiting on a failing download gets its error; upstream is asked once."""
    await synced(workspace, upstream)
    gate = threading.Event()
    upstream.server.route("/repo/a", gated(b"gone", gate, code=404))
    errors: list[HTTPStatusError] = []
    async with open_content_fetcher(workspace) as fetcher:
        found = await fetcher.find(await fetcher.find_version("files"), "a")

        async def open_one() -> None:
            with pytest.raises(HTTPStatusError) as info:
                async with fetcher.open(found):
                    pass
            errors.append(info.value)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(10):
                    tg.start_soon(open_one)
                await anyio.wait_all_tasks_blocked()
                gate.set()
    assert len(errors) == 10
    assert {error.status_code for error in errors} == {404}
    assert all(error is errors[0] for error in errors)
    assert len(upstream.server.requests_for("/repo/a")) == 1


class _RecordingDownloader(HttpDownloader):
    """An HttpDownloader that records each run and tells the test when one begins."""

    def __init__(self, *, runs: list[str], began: anyio.Event, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._runs = runs
        self._began = began

    async def run(self) -> DownloadResult:
        self._runs.append(self.url)
        self._began.set()
        return await super().run()


async def test_a_cancelled_downloader_hands_the_download_to_a_waiter(
    workspace: Workspace, upstream: Upstream
) -> None:
    """The opener downloading is cancelled: a waiter downloads again, every waiter reads."""
    await synced(workspace, upstream)
    gate = threading.Event()
    upstream.server.route("/repo/a", gated(FILES["a"], gate))
    runs: list[str] = []
    began = anyio.Event()
    results: list[bytes] = []
    async with (
        workspace.open_store() as store,
        workspace.storage.temporary_area() as area,
        DownloaderFactory() as factory,
    ):
        factory.register("http", functools.partial(_RecordingDownloader, runs=runs, began=began))
        fetcher = ContentFetcher(store, workspace.storage, factory, temporary_area=area)
        found = await fetcher.find(await fetcher.find_version("files"), "a")
        first = anyio.CancelScope()

        async def downloading() -> None:
            with first:
                async with fetcher.open(found):
                    raise AssertionError("the cancelled opener opened the file")

        async def waiting() -> None:
            async with fetcher.open(found) as opened:
                results.append(await opened.read())

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(downloading)
                await began.wait()
                for _ in range(5):
                    tg.start_soon(waiting)
                await anyio.wait_all_tasks_blocked()
                first.cancel()
                gate.set()
        assert first.cancelled_caught
        assert files_in_area(area) == []
    assert results == [FILES["a"]] * 5
    assert runs == [upstream.url("a")] * 2
    assert (await content_artifacts(workspace))["a"].artifact is not None


async def test_cancelling_a_download_leaves_no_temporary_file(
    home: Path, upstream: Upstream
) -> None:
    """An open cancelled while its file is half downloaded leaves nothing behind."""
    # Small batches: the body is written to the temporary file as it arrives.
    small_batches = functools.partial(DownloaderFactory, batch_size=1024)
    workspace = Workspace(home, downloader_factory=small_batches)
    data = bytes(range(256)) * 512
    upstream.add("big", data)
    await synced(workspace, upstream)
    upstream.server.route("/repo/big", stall(data, send=len(data) // 2))
    async with open_content_fetcher(workspace) as fetcher:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_file, fetcher, "big")
                await anyio.to_thread.run_sync(wait_for_a_file, fetcher.temporary_area)
                tg.cancel_scope.cancel()
        assert files_in_area(fetcher.temporary_area) == []
    assert (await content_artifacts(workspace))["big"].artifact is None
    assert leftover_temporary_files(workspace) == []


async def test_cancelling_the_read_of_a_streamed_copy_removes_it(
    workspace: Workspace, upstream: Upstream
) -> None:
    """A reader cancelled mid-stream closes the file and the copy is removed at once."""
    await synced(workspace, upstream, DownloadPolicy.STREAMED)
    async with open_content_fetcher(workspace) as fetcher:
        with anyio.CancelScope() as scope:
            async with fetcher.open_path("files", None, "dir/sub/c") as opened:
                stream = opened.chunks(chunk_size=4)
                assert await stream.__anext__() == FILES["dir/sub/c"][:4]
                assert files_in_area(fetcher.temporary_area) != []
                scope.cancel()
                async for _chunk in stream:
                    raise AssertionError("read on after the cancellation")
        assert scope.cancelled_caught
        assert files_in_area(fetcher.temporary_area) == []
    assert leftover_temporary_files(workspace) == []
