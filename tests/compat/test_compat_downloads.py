"""Download stages the asyncio-era way: ``GenericDownloader`` subclasses hand-wired to
queues, ``ArtifactDownloader`` with a test's own ``remote.get_downloader``, and
``Remote.get_downloader(url=...)`` against a real local HTTP server.

Asyncio-only by nature: the shim is the asyncio API (see conftest.py).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import anyio
import pytest

from stageline.download import DownloaderFactory
from stageline.models import Artifact
from stageline.progress import MemoryReporter, reporting_to
from stageline.storage import use_temp_dir
from stageline_compat import (
    ArtifactDownloader,
    DeclarativeArtifact,
    DeclarativeContent,
    GenericDownloader,
    Remote,
    Stage,
)

from ..download._servers import LocalServer, body
from ..stages import HANG_TIMEOUT

pytestmark = pytest.mark.anyio


@pytest.fixture
def temp_dir(tmp_path: Path) -> Iterator[Path]:
    """The temporary area downloads write to, private to the test."""
    path = tmp_path / "downloads"
    path.mkdir()
    with use_temp_dir(path):
        yield path


class GatedDownloads(GenericDownloader):
    """Each unit's "download" waits for its own gate; counts how many run at once."""

    PROGRESS_REPORTING_MESSAGE = "Downloading Gated Units"
    PROGRESS_REPORTING_CODE = "tests.downloading.gated"

    def __init__(self, max_concurrent_content: int, gates: dict[int, asyncio.Event]) -> None:
        super().__init__(max_concurrent_content=max_concurrent_content)
        self.gates = gates
        self.running = 0
        self.peak = 0
        self.started: list[int] = []
        self.cancelled: list[int] = []

    async def _handle_content_unit(self, d_content: Any) -> int:
        number = d_content.content.number
        self.started.append(number)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.gates[number].wait()
            if d_content.extra_data.get("fails"):
                raise ConnectionResetError(f"unit {number} failed")
            return 2
        except asyncio.CancelledError:
            self.cancelled.append(number)
            raise
        finally:
            self.running -= 1


def units(count: int, *, failing: int | None = None) -> list[DeclarativeContent]:
    """``count`` units with plain-object content numbered 0…; one may be set to fail."""
    made = []
    for number in range(count):
        content = mock.Mock(number=number)
        made.append(DeclarativeContent(content, extra_data={"fails": number == failing}))
    return made


def wired(stage: Stage, items: list[Any]) -> asyncio.Queue[Any]:
    """Wire ``stage`` to a queue holding ``items`` and the end marker; return its output."""
    in_q: asyncio.Queue[Any] = asyncio.Queue()
    out_q: asyncio.Queue[Any] = asyncio.Queue()
    for item in [*items, None]:
        in_q.put_nowait(item)
    stage._connect(in_q, out_q)
    return out_q


async def test_downloads_never_exceed_max_concurrent_content() -> None:
    """At most max_concurrent_content units download at once; all go out in order,
    counted in the stage's progress report."""
    with anyio.fail_after(HANG_TIMEOUT):
        gates = {number: asyncio.Event() for number in range(10)}
        stage = GatedDownloads(3, gates)
        items = units(10)
        out_q = wired(stage, items)
        reporter = MemoryReporter()
        with reporting_to(reporter):
            task = asyncio.ensure_future(stage())
            await anyio.wait_all_tasks_blocked()
            assert stage.running == 3
            for number in range(10):
                gates[number].set()
                await anyio.wait_all_tasks_blocked()
                assert stage.running <= 3
            await task
        assert stage.peak == 3
        assert [out_q.get_nowait() for _ in range(11)] == [*items, None]
        assert stage.downloaded == 20
        assert reporter.final("tests.downloading.gated").done == 20


async def test_a_failed_download_propagates_and_cancels_the_pending_ones() -> None:
    """The first failure is raised from the stage and every other download is cancelled."""
    with anyio.fail_after(HANG_TIMEOUT):
        gates = {number: asyncio.Event() for number in range(6)}
        stage = GatedDownloads(3, gates)
        out_q = wired(stage, units(6, failing=1))
        task = asyncio.ensure_future(stage())
        await anyio.wait_all_tasks_blocked()
        assert stage.started == [0, 1, 2]
        gates[1].set()
        with pytest.raises(ConnectionResetError, match="unit 1 failed"):
            await task
        # Every other unit that started (0 and 2, and any the failure's freed slot let in
        # before the cancellation landed) was cancelled; none finished.
        assert {0, 2} <= set(stage.cancelled)
        assert sorted(stage.cancelled) == sorted(n for n in stage.started if n != 1)
        assert stage.running == 0
        assert stage.downloaded == 0
        assert out_q.empty()  # no end marker after a failure


class FakeDownloader:
    """What ``remote.get_downloader(url=...)`` returns in the tests below."""

    def __init__(self, files: Path, url: str, gate: asyncio.Event, log: dict[str, int]) -> None:
        self.files, self.url, self.gate, self.log = files, url, gate, log

    async def run(self) -> Any:
        self.log["running"] += 1
        self.log["peak"] = max(self.log["peak"], self.log["running"])
        try:
            await self.gate.wait()
        finally:
            self.log["running"] -= 1
        data = self.url.encode()
        path = self.files / hashlib.sha256(data).hexdigest()
        path.write_bytes(data)
        return mock.Mock(
            path=path,
            url=self.url,
            artifact_attributes={"size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        )


async def test_artifact_downloader_downloads_through_the_remotes_get_downloader(
    tmp_path: Path,
) -> None:
    """ArtifactDownloader() asks each artifact's remote for its downloader, as plugins'
    remotes (and tests' mocks) expect, never more than max_concurrent_content at once."""
    with anyio.fail_after(HANG_TIMEOUT):
        gate = asyncio.Event()
        log = {"running": 0, "peak": 0}
        remote = mock.Mock()
        remote.get_downloader.side_effect = lambda url, **expected: FakeDownloader(
            tmp_path, url, gate, log
        )
        items = [
            DeclarativeContent(
                mock.Mock(),
                d_artifacts=[
                    DeclarativeArtifact(
                        Artifact(), f"https://example.org/{n}", f"{n}.txt", remote, None, False
                    )
                ],
            )
            for n in range(5)
        ]
        stage = ArtifactDownloader(max_concurrent_content=2)
        out_q = wired(stage, items)
        task = asyncio.ensure_future(stage())
        await anyio.wait_all_tasks_blocked()
        assert log["running"] == 2
        gate.set()
        await task
        assert log["peak"] == 2
        assert [out_q.get_nowait() for _ in range(6)] == [*items, None]
        urls = [call.kwargs["url"] for call in remote.get_downloader.call_args_list]
        assert sorted(urls) == [f"https://example.org/{n}" for n in range(5)]
        for n, d in enumerate(items):
            artifact = d.d_artifacts[0].artifact
            assert artifact.file is not None
            assert artifact.file.read_bytes() == f"https://example.org/{n}".encode()


async def test_remote_get_downloader_downloads_from_a_real_server(
    server: LocalServer, temp_dir: Path
) -> None:
    """remote.get_downloader(url=...) returns a downloader of the factory open in context."""
    data = b"PULP-STYLE MANIFEST\n"
    url = server.route("/repo/MANIFEST", body(data))
    remote = Remote(url=server.url("/repo/"), name="upstream", max_retries=0)
    with anyio.fail_after(HANG_TIMEOUT):
        async with DownloaderFactory():
            downloader = remote.get_downloader(url=url)
            result = await downloader.run()
    assert result.path.read_bytes() == data
    assert result.path.parent == temp_dir
    assert result.artifact_attributes["sha256"] == hashlib.sha256(data).hexdigest()


async def test_declarative_artifact_download_uses_the_remotes_get_downloader(
    server: LocalServer, temp_dir: Path
) -> None:
    """d_artifact.download() with a shimmed Remote downloads and replaces the artifact."""
    data = b"a file\n"
    url = server.route("/repo/a.txt", body(data))
    remote = Remote(url=server.url("/repo/"), name="upstream", max_retries=0)
    da = DeclarativeArtifact(Artifact(size=len(data)), url, "a.txt", remote)
    with anyio.fail_after(HANG_TIMEOUT):
        async with DownloaderFactory():
            await da.download()
    assert da.artifact.file is not None
    assert da.artifact.file.read_bytes() == data
    assert da.artifact.sha256 == hashlib.sha256(data).hexdigest()


def test_get_downloader_needs_a_url() -> None:
    """Remote.get_downloader() without url or remote_artifact is a ValueError naming it."""
    remote = Remote(url="https://example.org/", name="upstream")
    with pytest.raises(ValueError, match="url="):
        remote.get_downloader()


def stand_in_artifact(download: Any) -> Any:
    """A mock declarative artifact with what ArtifactDownloader reads, and ``download``."""
    return mock.Mock(
        artifact=mock.Mock(saved=False, file=None, sha256=None, size=1),
        deferred_download=False,
        urls=("https://example.org/x",),
        all_urls=("https://example.org/x",),
        download=download,
    )


async def test_artifact_downloader_with_mock_declarative_artifacts() -> None:
    """Mock declarative artifacts are downloaded through their own download(), never more
    than max_concurrent_content units at once; a failure cancels the others and is raised."""
    with anyio.fail_after(HANG_TIMEOUT):
        gate = asyncio.Event()
        log = {"running": 0, "peak": 0, "cancelled": 0}

        async def download(factory: Any) -> None:
            log["running"] += 1
            log["peak"] = max(log["peak"], log["running"])
            try:
                await gate.wait()
            except asyncio.CancelledError:
                log["cancelled"] += 1
                raise
            finally:
                log["running"] -= 1

        items = [
            DeclarativeContent(mock.Mock(), d_artifacts=[stand_in_artifact(download)])
            for _ in range(6)
        ]
        stage = ArtifactDownloader(max_concurrent_content=3)
        out_q = wired(stage, items)
        task = asyncio.ensure_future(stage())
        await anyio.wait_all_tasks_blocked()
        assert log["running"] == 3
        gate.set()
        await task
        assert log["peak"] == 3
        assert [out_q.get_nowait() for _ in range(7)] == [*items, None]

        async def fails(factory: Any) -> None:
            raise ConnectionResetError("mirror went away")

        gate.clear()
        log.update(running=0, peak=0, cancelled=0)
        failing = [
            DeclarativeContent(mock.Mock(), d_artifacts=[stand_in_artifact(download)]),
            DeclarativeContent(mock.Mock(), d_artifacts=[stand_in_artifact(download)]),
            DeclarativeContent(mock.Mock(), d_artifacts=[stand_in_artifact(fails)]),
        ]
        stage = ArtifactDownloader(max_concurrent_content=3)
        out_q = wired(stage, failing)
        with pytest.raises(ConnectionResetError, match="went away"):
            await stage()
        assert log["cancelled"] == 2
        assert out_q.empty()
