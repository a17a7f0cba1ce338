"""Mirror syncs through the database's record of seen content, on SQLite and PostgreSQL."""

from __future__ import annotations

import anyio
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from stageline import DeclarativeVersion, Stage, Workspace
from stageline.models import Repository, RepositoryVersion
from stageline.store import NewVersion

from ..download._servers import LocalServer
from ._plugin import ManifestFirstStage, Upstream
from ._support import latest, paths_in, sync, units_in

pytestmark = pytest.mark.anyio


def seen_rows(database: str) -> int:
    """How many rows the record of seen content holds (every sync's)."""
    url = database if "://" in database else f"sqlite:///{database}"
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM new_version_seen").scalar_one())
    finally:
        engine.dispose()


def serve(upstream: Upstream, names: list[str]) -> dict[str, str]:
    return {name: upstream.add(name, f"content of {name}".encode()) for name in names}


async def test_a_mirror_sync_removes_exactly_what_upstream_dropped(
    any_workspace: Workspace, any_database: str, upstream: Upstream
) -> None:
    """Across many small batches, mirror removes the dropped files only; additive keeps them."""
    expected = serve(upstream, [f"f{n}" for n in range(9)])
    await sync(any_workspace, ManifestFirstStage(upstream.remote()), batch_size=2)
    for name in ("f0", "f4", "f8"):
        upstream.remove(name)
        del expected[name]
    # Additive: nothing to add, nothing removed, no version.
    assert await sync(any_workspace, ManifestFirstStage(upstream.remote()), batch_size=2) is None
    assert len(await paths_in(any_workspace)) == 9
    version = await sync(
        any_workspace, ManifestFirstStage(upstream.remote()), batch_size=2, mirror=True
    )
    assert version is not None
    assert (version.number, version.added_count, version.removed_count) == (2, 0, 3)
    assert await paths_in(any_workspace) == expected
    assert seen_rows(any_database) == 0


class Interrupt(Stage):
    """Last stage: on the first item (its batch is marked seen by then) raise or cancel."""

    def __init__(self, how: str, scope: anyio.CancelScope, database: str) -> None:
        self.how = how
        self.scope = scope
        self.database = database

    async def run(self) -> None:
        async for _d in self.items():
            assert seen_rows(self.database) >= 1
            if self.how == "cancel":
                self.scope.cancel()
                await anyio.sleep_forever()
            raise RuntimeError("boom after marking")


class InterruptedMirror(DeclarativeVersion):
    def __init__(
        self, *args: object, how: str, scope: anyio.CancelScope, database: str, **kw: object
    ) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.interrupt = Interrupt(how, scope, database)

    def pipeline_stages(self, new_version: NewVersion) -> list[Stage]:
        return [*super().pipeline_stages(new_version), self.interrupt]


@pytest.mark.parametrize("how", ["raise", "cancel"])
async def test_a_failed_or_cancelled_mirror_sync_leaves_no_record_and_no_version(
    any_workspace: Workspace, any_database: str, upstream: Upstream, how: str
) -> None:
    """Units marked seen before the sync failed leave no row; the next mirror is exact."""
    expected = serve(upstream, ["a", "b", "c"])
    await sync(any_workspace, ManifestFirstStage(upstream.remote()))
    upstream.remove("b")
    del expected["b"]
    with anyio.fail_after(30), anyio.CancelScope() as scope:
        interrupted = InterruptedMirror(
            ManifestFirstStage(upstream.remote()),
            Repository(name="files"),
            workspace=any_workspace,
            mirror=True,
            batch_size=1,
            how=how,
            scope=scope,
            database=any_database,
        )
        if how == "raise":
            with pytest.raises(RuntimeError, match="boom after marking"):
                await interrupted.acreate()
        else:
            await interrupted.acreate()
    assert scope.cancelled_caught == (how == "cancel")
    assert seen_rows(any_database) == 0
    assert (await latest(any_workspace)).number == 1
    version = await sync(any_workspace, ManifestFirstStage(upstream.remote()), mirror=True)
    assert version is not None
    assert version.removed_count == 1
    assert await paths_in(any_workspace) == expected


async def test_mirror_syncs_of_two_repositories_at_once_remove_only_their_own(
    any_workspace: Workspace, any_database: str, server: LocalServer
) -> None:
    """Two mirror syncs at once, of repositories sharing units, each remove what they lost."""
    upstreams = {name: Upstream(server, prefix=f"/{name}/") for name in ("one", "two")}
    for name, upstream in upstreams.items():
        serve(upstream, [f"f{n}" for n in range(8)])
        await sync(any_workspace, ManifestFirstStage(upstream.remote(name=name)), repository=name)
    dropped = {"one": ["f0", "f1", "f2"], "two": ["f5", "f6", "f7"]}
    for name, paths in dropped.items():
        for path in paths:
            upstreams[name].remove(path)
    versions: dict[str, RepositoryVersion | None] = {}

    async def mirror(name: str) -> None:
        versions[name] = await sync(
            any_workspace,
            ManifestFirstStage(upstreams[name].remote(name=name)),
            repository=name,
            mirror=True,
            batch_size=2,
        )

    with anyio.fail_after(60):
        async with any_workspace, anyio.create_task_group() as tg:
            for name in upstreams:
                tg.start_soon(mirror, name)
    for name, paths in dropped.items():
        version = versions[name]
        assert version is not None
        assert (version.removed_count, version.content_count) == (3, 5)
        kept = sorted(f"f{n}" for n in range(8) if f"f{n}" not in paths)
        assert sorted(await paths_in(any_workspace, name)) == kept
    # The two repositories share the units both kept: one saved row each.
    one, two = [
        {u.relative_path: u.pk for u in await units_in(any_workspace, name)}  # type: ignore[attr-defined]
        for name in upstreams
    ]
    assert {path: one[path] for path in ("f3", "f4")} == {path: two[path] for path in ("f3", "f4")}
    assert seen_rows(any_database) == 0
