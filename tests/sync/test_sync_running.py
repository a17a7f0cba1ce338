"""Running a sync: create() and acreate(), the default workspace, two syncs of one repository."""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path

import anyio
import pytest

from stageline import (
    DeclarativeVersion,
    PipelineError,
    RepositoryBusyError,
    StageConfigurationError,
    StoreError,
    Workspace,
)
from stageline.models import Repository, RepositoryVersion

from ._plugin import ManifestFirstStage, Upstream
from ._support import paths_in, sync

BACKENDS = ["asyncio", "trio"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_first_sync_needs_no_set_up(
    backend: str, tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """create() with the defaults makes stageline's home (owner only), the repository, v1."""
    home = tmp_path / "not-yet" / "stageline"
    monkeypatch.setenv("STAGELINE_HOME", str(home))
    upstream.add("a", b"content of a")
    dv = DeclarativeVersion(ManifestFirstStage(upstream.remote()), Repository(name="x"))
    version = dv.create(backend=backend)  # type: ignore[arg-type]
    assert version is not None
    assert version.number == 1
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert (home / "stageline.db").is_file()
    assert dv.workspace.storage.root == home / "artifacts"
    # A second create() of the same repository finds it and changes nothing.
    assert dv.create(backend=backend) is None  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_create_inside_a_running_loop_points_to_acreate(workspace: Workspace) -> None:
    """create() from inside an event loop is refused with a way out."""
    dv = DeclarativeVersion(
        ManifestFirstStage.__new__(ManifestFirstStage), Repository(name="x"), workspace=workspace
    )
    with pytest.raises(PipelineError, match="acreate"):
        dv.create()


def test_wrong_arguments_are_refused_when_the_sync_is_made(workspace: Workspace) -> None:
    """A bad backend, acs=True without sources, out-of-range sizes: refused, argument named."""
    first = ManifestFirstStage.__new__(ManifestFirstStage)
    repository = Repository(name="x")
    dv = DeclarativeVersion(first, repository, workspace=workspace)
    with pytest.raises(StageConfigurationError, match="backend"):
        dv.create(backend="curio")  # type: ignore[arg-type]
    with pytest.raises(StageConfigurationError, match="acs"):
        DeclarativeVersion(first, repository, acs=True, workspace=workspace)
    for name in ("max_concurrent_content", "batch_size"):
        with pytest.raises(StageConfigurationError, match=name):
            DeclarativeVersion(first, repository, workspace=workspace, **{name: 0})  # type: ignore[arg-type]
    for wrong in (-1, "60", float("nan")):
        with pytest.raises(StageConfigurationError, match="lock_timeout"):
            DeclarativeVersion(first, repository, workspace=workspace, lock_timeout=wrong)  # type: ignore[arg-type]
    with pytest.raises(StageConfigurationError, match="first_stage"):
        DeclarativeVersion(object(), repository, workspace=workspace)  # type: ignore[arg-type]
    with pytest.raises(StageConfigurationError, match="Repository"):
        DeclarativeVersion(first, "x", workspace=workspace)  # type: ignore[arg-type]


def test_a_workspace_never_shows_a_database_password(tmp_path: Path) -> None:
    """The repr names the database with its password hidden."""
    workspace = Workspace(tmp_path, database="postgresql+psycopg://sync:s3cret@db:5432/stageline")
    assert "s3cret" not in repr(workspace)
    assert "sync:***@db:5432/stageline" in repr(workspace)


@pytest.mark.anyio
async def test_an_open_workspace_shares_its_store_between_syncs(
    workspace: Workspace, upstream: Upstream
) -> None:
    """Inside `async with workspace:` every sync uses the one open store."""
    upstream.add("a", b"content of a")
    with pytest.raises(StoreError, match="not open"):
        workspace.store  # noqa: B018
    async with workspace:
        store = workspace.store
        assert await sync(workspace, ManifestFirstStage(upstream.remote()), repository="one")
        assert await sync(workspace, ManifestFirstStage(upstream.remote()), repository="two")
        assert workspace.store is store
        assert [r.number for r in await store.list_versions(await store.get_repository("two"))] == [
            0,
            1,
        ]


class _Held(ManifestFirstStage):
    """Declares the manifest's files only once released."""

    def __init__(self, upstream: Upstream, holding: anyio.Event, release: anyio.Event) -> None:
        super().__init__(upstream.remote())
        self.holding = holding
        self.release = release

    async def run(self) -> None:
        self.holding.set()
        await self.release.wait()
        await super().run()


class _SetOn(logging.Handler):
    def __init__(self, event: anyio.Event, text: str) -> None:
        super().__init__()
        self.event = event
        self.text = text

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@pytest.mark.anyio
async def test_a_second_sync_of_a_repository_waits_for_the_first(
    any_workspace: Workspace, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    """The second sync waits (and says so) while the first builds its version, then runs."""
    upstream.add("a", b"content of a")
    holding, release, waiting = anyio.Event(), anyio.Event(), anyio.Event()
    results: dict[str, RepositoryVersion | None] = {}
    handler = _SetOn(waiting, "waiting for it to finish")
    caplog.set_level(logging.INFO, logger="stageline.sync")
    logging.getLogger("stageline.sync").addHandler(handler)

    async def run(name: str, first: ManifestFirstStage) -> None:
        results[name] = await sync(any_workspace, first)

    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(run, "first", _Held(upstream, holding, release))
                await holding.wait()
                tg.start_soon(run, "second", ManifestFirstStage(upstream.remote()))
                await waiting.wait()
                release.set()
    finally:
        logging.getLogger("stageline.sync").removeHandler(handler)
    first = results["first"]
    assert first is not None
    assert first.number == 1
    # The second ran after the first committed: it found nothing new.
    assert results["second"] is None
    assert await paths_in(any_workspace) == {"a": upstream.add("a", b"content of a")}


@pytest.mark.anyio
async def test_a_sync_that_may_not_wait_fails_with_repository_busy(
    workspace: Workspace, upstream: Upstream
) -> None:
    """lock_timeout=0: a busy repository fails the second sync at once, the first goes on."""
    upstream.add("a", b"content of a")
    holding, release = anyio.Event(), anyio.Event()
    results: list[RepositoryVersion | None] = []

    async def run_first() -> None:
        results.append(await sync(workspace, _Held(upstream, holding, release)))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_first)
            await holding.wait()
            with pytest.raises(RepositoryBusyError, match="files"):
                await sync(workspace, ManifestFirstStage(upstream.remote()), lock_timeout=0)
            release.set()
    assert results[0] is not None
    assert results[0].number == 1


@pytest.mark.anyio
async def test_one_declarative_version_runs_one_sync_at_a_time(
    workspace: Workspace, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    """While its sync waits for the repository, a second acreate() of it is refused."""
    upstream.add("a", b"content of a")
    holding, release, waiting = anyio.Event(), anyio.Event(), anyio.Event()
    handler = _SetOn(waiting, "waiting for it to finish")
    caplog.set_level(logging.INFO, logger="stageline.sync")
    logging.getLogger("stageline.sync").addHandler(handler)
    dv = DeclarativeVersion(
        ManifestFirstStage(upstream.remote()), Repository(name="files"), workspace=workspace
    )
    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(sync, workspace, _Held(upstream, holding, release))
                await holding.wait()
                tg.start_soon(dv.acreate)
                await waiting.wait()
                with pytest.raises(PipelineError, match="running already"):
                    await dv.acreate()
                release.set()
    finally:
        logging.getLogger("stageline.sync").removeHandler(handler)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_create_runs_in_a_thread_started_from_an_event_loop(
    backend: str, workspace: Workspace, upstream: Upstream
) -> None:
    """create() in a worker thread of a running loop (asyncio.to_thread, the way async code
    calls synchronous code) runs the sync: the thread copies the loop's context, which
    names the loop's library, but no loop runs in that thread."""
    upstream.add("a", b"content of a")

    async def main() -> RepositoryVersion | None:
        dv = DeclarativeVersion(
            ManifestFirstStage(upstream.remote()), Repository(name="x"), workspace=workspace
        )
        return await asyncio.to_thread(dv.create, backend=backend)  # type: ignore[arg-type]

    version = anyio.run(main)
    assert version is not None
    assert version.number == 1
    assert version.content_count == 1
