"""ArtifactSaver, ContentSaver and RemoteArtifactSaver on a real SQLite file and storage."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.sync._plugin import SyncFile, file_unit, sha256_of

from stageline import DeclarativeArtifact, DeclarativeContent, PipelineError, StoreError, SyncError
from stageline.models import Artifact, ContentArtifact, Remote
from stageline.stages import ArtifactSaver, ContentSaver, RemoteArtifactSaver
from stageline.storage import ArtifactStorage
from stageline.store import Store
from stageline.testing import run_stage

pytestmark = pytest.mark.anyio

REMOTE_URL = "http://127.0.0.1:9/repo/"


def unit(path: str, data: bytes, remote: Remote | None = None) -> DeclarativeContent:
    """A declared file unit (its artifact declared with size and sha256, unsaved)."""
    return file_unit(remote or Remote(url=REMOTE_URL, name="r"), path, sha256_of(data), len(data))


def downloaded(d: DeclarativeContent, folder: Path, data: bytes) -> Artifact:
    """Make ``d``'s artifact look downloaded: a file in ``folder`` with every digest."""
    path = folder / d.d_artifacts[0].relative_path
    path.write_bytes(data)
    artifact = Artifact(size=len(data), sha256=sha256_of(data), file=path)
    d.d_artifacts[0].artifact = artifact
    return artifact


async def test_artifact_saver_stores_files_and_saves_their_artifacts(
    store: Store, storage: ArtifactStorage
) -> None:
    """A downloaded file moves into storage and its artifact is saved; others pass untouched."""
    async with storage.temporary_area() as area:
        fresh, deferred = unit("fresh", b"fresh bytes"), unit("deferred", b"deferred bytes")
        temporary = downloaded(fresh, area, b"fresh bytes").file
        assert temporary is not None
        assert await run_stage(ArtifactSaver(store, storage), [fresh, deferred]) == [
            fresh,
            deferred,
        ]
        assert not temporary.exists()
    saved = fresh.d_artifacts[0].artifact
    assert saved.saved
    assert await storage.read_bytes(saved) == b"fresh bytes"
    assert (await store.find_artifacts([sha256_of(b"fresh bytes")]))[
        saved.sha256 or ""
    ].pk == saved.pk
    assert not deferred.d_artifacts[0].artifact.saved
    assert deferred.d_artifacts[0].artifact.file is None


async def test_an_artifact_saved_meanwhile_becomes_the_saved_one(
    store: Store, storage: ArtifactStorage
) -> None:
    """A file whose sha256 another sync saved first: the stage hands on that saved artifact."""
    first = await storage.store_bytes(b"same bytes")
    [earlier] = await store.save_artifacts([first])
    async with storage.temporary_area() as area:
        d = unit("late", b"same bytes")
        downloaded(d, area, b"same bytes")
        await run_stage(ArtifactSaver(store, storage), [d])
    assert d.d_artifacts[0].artifact.pk == earlier.pk


class Recording(ContentSaver):
    """Records what its hooks saw."""

    def __init__(self, store: Store, *, batch_size: int) -> None:
        super().__init__(store, batch_size=batch_size)
        self.calls: list[tuple[str, list[bool]]] = []

    async def _pre_save(self, batch: list[DeclarativeContent]) -> None:
        self.calls.append(("pre", [d.content.saved for d in batch]))

    async def _post_save(self, batch: list[DeclarativeContent]) -> None:
        self.calls.append(("post", [d.content.saved for d in batch]))


async def test_content_saver_saves_new_units_with_their_content_artifacts(
    store: Store, storage: ArtifactStorage
) -> None:
    """New units are saved; each file's content artifact has its saved artifact or none."""
    kept = unit("kept", b"kept bytes")
    kept.d_artifacts[0].artifact = (
        await store.save_artifacts([await storage.store_bytes(b"kept bytes")])
    )[0]
    deferred = unit("deferred", b"deferred bytes")
    stage = Recording(store, batch_size=500)
    assert await run_stage(stage, [kept, deferred]) == [kept, deferred]
    assert kept.content.saved
    assert deferred.content.saved
    cas = {
        ca.relative_path: ca
        for ca in await store.find_content_artifacts([kept.content, deferred.content])
    }
    assert cas["kept"].artifact is not None
    assert cas["kept"].artifact.pk == kept.d_artifacts[0].artifact.pk
    assert cas["deferred"].artifact is None
    assert stage.calls == [("pre", [False, False]), ("post", [True, True])]


async def test_content_saver_hooks_run_once_per_batch(store: Store) -> None:
    """Three units in batches of two: two pre/post pairs, in order."""
    items = [unit(name, name.encode()) for name in ("a", "b", "c")]
    stage = Recording(store, batch_size=2)
    await run_stage(stage, items, maxsize=0)
    assert [name for name, _ in stage.calls] == ["pre", "post", "pre", "post"]
    assert sum(len(saved) for _, saved in stage.calls) == 6


class FailingAfterSave(ContentSaver):
    """Writes a row of its own in _pre_save, then fails in _post_save."""

    async def _pre_save(self, batch: list[DeclarativeContent]) -> None:
        assert self.unit_of_work is not None
        await self.unit_of_work.run_sync(
            lambda conn: conn.exec_driver_sql(
                "INSERT INTO repositories (name, description) VALUES ('plugin row', '')"
            )
        )

    async def _post_save(self, batch: list[DeclarativeContent]) -> None:
        assert all(d.content.saved for d in batch)
        raise RuntimeError("the plugin's own post-save failed")


async def test_content_saver_hooks_share_the_batch_transaction(store: Store) -> None:
    """A failing _post_save rolls back the batch's content and the hook's own writes."""
    items = [unit(name, name.encode()) for name in ("a", "b")]
    stage = FailingAfterSave(store)
    with pytest.raises(RuntimeError, match="post-save failed"):
        await run_stage(stage, items)
    assert stage.unit_of_work is None
    assert await store.find_content([d.content for d in items]) == [None, None]
    with pytest.raises(StoreError, match="no repository named"):
        await store.get_repository("plugin row")


async def test_content_saver_fills_in_the_file_of_a_unit_first_synced_on_demand(
    store: Store, storage: ArtifactStorage
) -> None:
    """A saved unit whose content artifact had no artifact gets the now saved one."""
    data = b"on demand first"
    first = unit("late", data)
    [saved_unit] = await store.save_content(
        [first.content],
        [ContentArtifact(content=first.content, artifact=None, relative_path="late")],
    )
    again = unit("late", data)
    again.content = saved_unit
    again.d_artifacts[0].artifact = (await store.save_artifacts([await storage.store_bytes(data)]))[
        0
    ]
    await run_stage(ContentSaver(store), [again])
    [ca] = await store.find_content_artifacts([saved_unit])
    assert ca.artifact is not None
    assert ca.artifact.pk == again.d_artifacts[0].artifact.pk


def remote_rows(database: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM remotes").scalar_one())
    finally:
        engine.dispose()


async def test_remote_artifact_saver_records_where_each_file_is(
    store: Store, tmp_path: Path
) -> None:
    """One remote artifact per declared file, with url and digests; the remote saved once."""
    remote = Remote(url=REMOTE_URL, name="r")
    items = [unit(name, name.encode(), remote) for name in ("a", "b")]
    await run_stage(ContentSaver(store), items)
    await run_stage(RemoteArtifactSaver(store), items)
    assert remote.saved
    assert remote_rows(tmp_path / "stages.db") == 1
    cas = await store.find_content_artifacts([d.content for d in items])
    found = {ra.content_artifact.relative_path: ra for ra in await store.find_remote_artifacts(cas)}
    assert {path: (ra.url, ra.sha256, ra.size) for path, ra in found.items()} == {
        name: (REMOTE_URL + name, sha256_of(name.encode()), 1) for name in ("a", "b")
    }


async def test_remote_artifact_saver_reads_nothing_for_files_content_saver_just_saved(
    store: Store,
) -> None:
    """ContentSaver tells each declared file its content artifact: RemoteArtifactSaver
    writes their remote artifacts without looking the content artifacts up."""
    remote = Remote(url=REMOTE_URL, name="r")
    items = [unit(name, name.encode(), remote) for name in ("a", "b")]
    await run_stage(ContentSaver(store), items)
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    sa.event.listen(store._engine, "before_cursor_execute", record)
    try:
        await run_stage(RemoteArtifactSaver(store), items)
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", record)
    assert not [s for s in statements if "content_artifacts" in s], statements
    cas = await store.find_content_artifacts([d.content for d in items])
    found = await store.find_remote_artifacts(cas)
    assert sorted(ra.url for ra in found) == [REMOTE_URL + "a", REMOTE_URL + "b"]


async def test_a_path_changed_after_content_saver_is_looked_up(store: Store) -> None:
    """A declared file whose path a stage changed after ContentSaver is not taken for the
    content artifact saved at the old path: it is looked up, and found missing."""
    items = [unit("a", b"a")]
    await run_stage(ContentSaver(store), items)
    items[0].d_artifacts[0].relative_path = "elsewhere"
    with pytest.raises(SyncError, match="'elsewhere'"):
        await run_stage(RemoteArtifactSaver(store), items)


async def test_remote_artifact_saver_fixes_a_url_that_moved(store: Store) -> None:
    """Declared again at another url: the same remote artifact now has the new url."""
    remote = Remote(url=REMOTE_URL, name="r")
    first = unit("a", b"a", remote)
    await run_stage(ContentSaver(store), [first])
    await run_stage(RemoteArtifactSaver(store), [first])
    moved = unit("a", b"a", remote)
    moved.d_artifacts[0].url = "http://127.0.0.1:9/moved/a"
    await run_stage(ContentSaver(store), [moved])
    await run_stage(RemoteArtifactSaver(store), [moved])
    cas = await store.find_content_artifacts([moved.content])
    [ra] = await store.find_remote_artifacts(cas)
    assert ra.url == "http://127.0.0.1:9/moved/a"


async def test_a_declared_path_the_saved_unit_lacks_is_a_clear_error(store: Store) -> None:
    """Same natural key, another relative path: SyncError naming the unit and both paths."""
    remote = Remote(url=REMOTE_URL, name="r")
    first = unit("a", b"a", remote)
    await run_stage(ContentSaver(store), [first])
    renamed = DeclarativeContent(
        first.content,
        d_artifacts=[
            DeclarativeArtifact(
                artifact=Artifact(sha256=sha256_of(b"a")),
                url=REMOTE_URL + "elsewhere",
                relative_path="elsewhere",
                remote=remote,
            )
        ],
    )
    with pytest.raises(SyncError) as info:
        await run_stage(RemoteArtifactSaver(store), [renamed])
    message = str(info.value)
    assert "tests.sync.file" in message
    assert "'elsewhere'" in message
    assert "['a']" in message


async def test_unsaved_content_at_the_remote_artifact_saver_is_a_pipeline_error(
    store: Store,
) -> None:
    """Without ContentSaver before it, the stage says what the pipeline lacks."""
    with pytest.raises(PipelineError, match="ContentSaver"):
        await run_stage(RemoteArtifactSaver(store), [unit("a", b"a")])


async def test_units_without_remote_are_passed_on(store: Store) -> None:
    """A unit whose file has no remote (a local file) needs no remote artifact."""
    d = DeclarativeContent(SyncFile(relative_path="x", sha256=sha256_of(b"x"), size=1))
    await run_stage(ContentSaver(store), [d])
    assert await run_stage(RemoteArtifactSaver(store), [d]) == [d]


async def test_a_batch_with_nothing_to_write_opens_no_transaction_unless_a_hook_is_there(
    store: Store, storage: ArtifactStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-sync's batch (units saved, files deferred) costs no write transaction; with an
    overridden hook the hook still runs, in a unit of work, for such a batch. New units
    alone need no unit of work; a saved file for a saved unit does."""
    items = [unit(name, name.encode()) for name in ("a", "b")]
    await run_stage(ContentSaver(store), items)
    opened: list[int] = []
    real = store.unit_of_work

    def counting() -> object:
        opened.append(1)
        return real()

    monkeypatch.setattr(store, "unit_of_work", counting)
    again = [unit(name, name.encode()) for name in ("a", "b")]
    for d, first in zip(again, items, strict=True):
        d.content = first.content  # as QueryExistingContents hands them on
    assert await run_stage(ContentSaver(store), again) == again
    assert opened == []
    stage = Recording(store, batch_size=500)
    await run_stage(stage, again)
    assert opened == [1]
    assert stage.calls == [("pre", [True, True]), ("post", [True, True])]
    # A new unit is saved by one store call (its own transaction); a saved file, which a
    # deferred content artifact of its saved unit may lack (and then gets), needs a unit
    # of work, for the lookup and the update together.
    new = unit("c", b"c")
    await run_stage(ContentSaver(store), [*again, new])
    assert opened == [1]
    assert new.content.saved
    assert [saved.pk for saved in await store.find_content([new.content])] == [new.content.pk]
    filled = unit("a", b"a")
    filled.content = items[0].content
    filled.d_artifacts[0].artifact = (
        await store.save_artifacts([await storage.store_bytes(b"a")])
    )[0]
    await run_stage(ContentSaver(store), [filled])
    assert opened == [1, 1]
    [ca] = await store.find_content_artifacts([items[0].content])
    assert ca.artifact is not None
