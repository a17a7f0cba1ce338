"""Batch operations: insert-or-get of artifacts, content, content and remote artifacts."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.from_thread
import pytest
import sqlalchemy as sa
from store_support import FileUnit, PackageUnit, count_statements, sha

from stageline import ContentTypeError, StoreArgumentError, StoreError
from stageline.models import Artifact, ContentArtifact, Remote, RemoteArtifact
from stageline.store import Store, _remotes

pytestmark = pytest.mark.anyio


def files(numbers: range | list[int]) -> list[FileUnit]:
    return [FileUnit(path=f"f{n}", digest=sha(n), size=n) for n in numbers]


async def saved_artifacts(store: Store, numbers: range | list[int]) -> list[Artifact]:
    return await store.save_artifacts([Artifact(sha256=sha(n), size=n) for n in numbers])


async def test_artifacts_insert_or_get(store: Store) -> None:
    """Saving artifacts twice gives the same pks; duplicates in one batch share a row."""
    first = await saved_artifacts(store, range(5))
    assert all(a.saved for a in first)
    again = await store.save_artifacts([Artifact(sha256=sha(n), size=n) for n in [4, 3, 5, 5, 6]])
    by_sha = {a.sha256: a.pk for a in first}
    assert again[0].pk == by_sha[sha(4)]
    assert again[1].pk == by_sha[sha(3)]
    assert again[2] is again[3]
    assert again[2].pk not in by_sha.values()
    found = await store.find_artifacts([sha(n) for n in range(10)])
    assert sorted(found) == [sha(n) for n in range(7)]
    assert found[sha(2)].pk == by_sha[sha(2)]
    assert found[sha(2)].size == 2


async def test_artifact_without_sha256_is_refused(store: Store) -> None:
    """An artifact without a sha256 cannot be saved: ValueError names it."""
    with pytest.raises(ValueError, match="sha256"):
        await store.save_artifacts([Artifact(size=1)])


async def test_argument_errors_are_stageline_errors_and_value_errors(store: Store) -> None:
    """The store refuses bad arguments with StoreArgumentError: a StoreError and a ValueError."""
    unit = FileUnit(path="f1", digest=sha(1))
    refusals: list[Callable[[], Awaitable[object]]] = [
        lambda: store.save_artifacts([Artifact(size=1)]),
        lambda: store.find_content_artifacts([unit]),
        lambda: store.update_content_artifacts(
            [ContentArtifact(content=unit, artifact=None, relative_path="f1")]
        ),
    ]
    for refusal in refusals:
        with pytest.raises(StoreArgumentError) as info:
            await refusal()
        assert isinstance(info.value, StoreError)
        assert isinstance(info.value, ValueError)


async def test_content_insert_or_get_with_content_artifacts(store: Store) -> None:
    """Content and its content artifacts are saved once; a second save returns the same rows."""
    artifacts = await saved_artifacts(store, range(3))
    units = files(range(3))
    cas = [
        ContentArtifact(content=u, artifact=a, relative_path=u.path)
        for u, a in zip(units, artifacts, strict=True)
    ]
    saved = await store.save_content(units, cas)
    assert [u is s for u, s in zip(units, saved, strict=True)] == [True] * 3
    assert all(ca.saved for ca in cas)
    assert all(ca.content is u for ca, u in zip(cas, units, strict=True))

    twins = files(range(4))
    twin_cas = [ContentArtifact(content=u, artifact=None, relative_path=u.path) for u in twins]
    again = await store.save_content(twins, twin_cas)
    assert [u.pk for u in again[:3]] == [u.pk for u in units]
    assert again[3] is twins[3]
    assert twins[3].saved
    assert [ca.pk for ca in twin_cas[:3]] == [ca.pk for ca in cas]
    assert twin_cas[0].content is again[0]
    # The artifact saved first stays: a later save without one does not clear it.
    existing = await store.find_content_artifacts(again)
    by_path = {ca.relative_path: ca.artifact.pk if ca.artifact else None for ca in existing}
    assert by_path == {
        "f0": artifacts[0].pk,
        "f1": artifacts[1].pk,
        "f2": artifacts[2].pk,
        "f3": None,
    }


async def test_save_content_by_path_takes_files_as_tuples(store: Store) -> None:
    """save_content_by_path: the units as save_content saves them, and each file's content
    artifact pk in input order; a file of a unit saved earlier, a deferred file that gets
    its artifact later, and a file given twice (one row) all work without objects."""
    artifacts = await saved_artifacts(store, range(3))
    [earlier] = await store.save_content(files([9]))
    units = files(range(2))
    saved, pks = await store.save_content_by_path(
        units,
        [
            (units[0], "f0", artifacts[0]),
            (earlier, "f9", None),
            (units[1], "f1", None),
            (units[1], "f1", None),
        ],
    )
    assert saved[0] is units[0]
    assert saved[1] is units[1]
    found = await store.find_content_artifacts([*units, earlier])
    pk_of = {(ca.content.pk, ca.relative_path): ca.pk for ca in found}
    assert pks == [
        pk_of[(units[0].pk, "f0")],
        pk_of[(earlier.pk, "f9")],
        pk_of[(units[1].pk, "f1")],
        pk_of[(units[1].pk, "f1")],
    ]
    # Again, with the deferred file's artifact now known: the same rows, the artifact set.
    _again, pks_again = await store.save_content_by_path(
        files(range(2)), [(units[1], "f1", artifacts[1])]
    )
    assert pks_again == [pk_of[(units[1].pk, "f1")]]
    [f1] = await store.find_content_artifacts([units[1]])
    assert f1.artifact is not None
    assert f1.artifact.pk == artifacts[1].pk


async def test_save_content_by_path_refuses_what_save_content_refuses(store: Store) -> None:
    unsaved = Artifact(sha256=sha(1), size=1)
    [one] = files([1])
    with pytest.raises(StoreArgumentError, match="artifact must be saved"):
        await store.save_content_by_path([one], [(one, "f1", unsaved)])
    with pytest.raises(StoreArgumentError, match="content must be saved"):
        await store.save_content_by_path([], [(files([2])[0], "f2", None)])
    unit = files([3])[0]
    with pytest.raises(StoreArgumentError, match="NUL"):
        await store.save_content_by_path([unit], [(unit, "f\x003", None)])
    assert unit.pk is None  # nothing was saved


async def test_find_content_by_natural_key(store: Store) -> None:
    """find_content returns saved units aligned with the input, None where absent."""
    await store.save_content([*files(range(3)), PackageUnit(name="p", version="1", requires=["a"])])
    found = await store.find_content(
        [
            FileUnit(path="f1", digest=sha(1)),
            FileUnit(path="f1", digest=sha(9)),
            PackageUnit(name="p", version="1"),
        ]
    )
    assert isinstance(found[0], FileUnit)
    assert found[0].saved
    assert found[0].size == 1
    assert found[1] is None
    assert isinstance(found[2], PackageUnit)
    assert found[2].requires == ["a"]


async def test_deferred_content_artifact_gets_its_artifact_later(store: Store) -> None:
    """A content artifact saved without artifact (on demand) gets the artifact saved later."""
    unit = files([1])[0]
    deferred = ContentArtifact(content=unit, artifact=None, relative_path="f1")
    await store.save_content([unit], [deferred])
    artifact = (await saved_artifacts(store, [1]))[0]
    twin = FileUnit(path="f1", digest=sha(1))
    ca = ContentArtifact(content=twin, artifact=artifact, relative_path="f1")
    await store.save_content([twin], [ca])
    assert ca.pk == deferred.pk
    [found] = await store.find_content_artifacts([unit])
    assert found.artifact is not None
    assert found.artifact.pk == artifact.pk


async def test_update_content_artifacts(store: Store) -> None:
    """update_content_artifacts fills only content artifacts that have no artifact yet."""
    units = files(range(2))
    cas = [ContentArtifact(content=u, artifact=None, relative_path=u.path) for u in units]
    await store.save_content(units, cas)
    a0, a1, a2 = await saved_artifacts(store, range(3))
    cas[0].artifact, cas[1].artifact = a0, a1
    assert await store.update_content_artifacts(cas) == 2
    cas[0].artifact = a2
    assert await store.update_content_artifacts(cas) == 0
    found = await store.find_content_artifacts(units)
    assert [ca.artifact.pk for ca in found if ca.artifact] == [a0.pk, a1.pk]


async def test_unsaved_artifact_in_content_artifact_is_refused(store: Store) -> None:
    """A content artifact pointing at an unsaved artifact is a ValueError, nothing saved."""
    unit = files([1])[0]
    with pytest.raises(ValueError, match="artifact must be saved"):
        await store.save_content(
            [unit],
            [ContentArtifact(content=unit, artifact=Artifact(sha256=sha(1)), relative_path="x")],
        )
    assert await store.find_content([unit]) == [None]


async def test_undeclared_content_type_is_refused(store: Store) -> None:
    """Saving an instance of a class that declares no type is a ContentTypeError."""
    from stageline.models import Content

    with pytest.raises(ContentTypeError, match="not a declared content type"):
        await store.save_content([Content()])


async def test_unknown_stored_type_is_a_clear_error(store: Store) -> None:
    """Reading content whose type no module declares names the type and the fix."""
    await store.save_content(files([1]))

    def retag(conn: sa.Connection) -> None:
        conn.exec_driver_sql("UPDATE content SET type = 'gone.type'")

    await store._run("retag", retag, write=True)
    with pytest.raises(ContentTypeError, match=r"'gone\.type'.*import the plugin"):
        await store.find_content([FileUnit(path="f1", digest=sha(1))])


async def test_remotes_round_trip(store: Store) -> None:
    """A saved remote reads back with every setting; saving again updates it."""
    remote = Remote(url="http://example.test/", name="up", policy="on_demand", headers={"a": "b"})
    await store.save_remote(remote)
    store._remotes.clear()
    loaded = await store.get_remote(remote.pk or 0)
    assert (loaded.url, loaded.policy, dict(loaded.headers)) == (
        "http://example.test/",
        "on_demand",
        {"a": "b"},
    )
    loaded.max_retries = 7
    await store.save_remote(loaded)
    store._remotes.clear()
    assert (await store.get_remote(remote.pk or 0)).max_retries == 7
    with pytest.raises(StoreError, match="does not exist"):
        await store.get_remote(12345)


async def test_remote_artifacts_insert_fix_url_and_find(store: Store) -> None:
    """Remote artifacts are unique per (content artifact, remote); a new url replaces the old."""
    units = files(range(3))
    cas = [ContentArtifact(content=u, artifact=None, relative_path=u.path) for u in units]
    await store.save_content(units, cas)
    r1 = await store.save_remote(Remote(url="http://one.test/", name="one"))
    r2 = await store.save_remote(Remote(url="http://two.test/", name="two"))
    first = await store.save_remote_artifacts(
        [
            RemoteArtifact(
                url=f"http://one.test/{ca.relative_path}",
                content_artifact=ca,
                remote=r1,
                sha256=sha(i),
            )
            for i, ca in enumerate(cas)
        ]
        + [RemoteArtifact(url="http://two.test/f0", content_artifact=cas[0], remote=r2)]
    )
    assert all(ra.saved for ra in first)
    moved = await store.save_remote_artifacts(
        [
            RemoteArtifact(url="http://one.test/new/f0", content_artifact=cas[0], remote=r1),
            RemoteArtifact(url="http://one.test/f1", content_artifact=cas[1], remote=r1),
        ]
    )
    assert [ra.pk for ra in moved] == [first[0].pk, first[1].pk]
    found = await store.find_remote_artifacts(cas[:2])
    assert [(ra.content_artifact.pk, ra.remote.pk, ra.url) for ra in found] == [
        (cas[0].pk, r1.pk, "http://one.test/new/f0"),
        (cas[0].pk, r2.pk, "http://two.test/f0"),
        (cas[1].pk, r1.pk, "http://one.test/f1"),
    ]
    assert found[2].sha256 == sha(1)
    only_r2 = await store.find_remote_artifacts(cas, remote=r2)
    assert [ra.url for ra in only_r2] == ["http://two.test/f0"]


@pytest.mark.parametrize("size", [10, 400])
async def test_round_trips_do_not_grow_with_the_batch(store: Store, size: int) -> None:
    """Saving and finding a batch costs a fixed number of statements, not one per item."""
    artifacts = [Artifact(sha256=sha(n)) for n in range(size)]
    units = files(range(size))
    with count_statements(store) as statements:
        await store.save_artifacts(artifacts)
        cas = [
            ContentArtifact(content=u, artifact=a, relative_path=u.path)
            for u, a in zip(units, artifacts, strict=True)
        ]
        await store.save_content(units, cas)
        await store.find_content(files(range(size)))
        await store.find_artifacts(a.sha256 or "" for a in artifacts)
        remote = await store.save_remote(Remote(url="http://x.test/", name="x"))
        await store.save_remote_artifacts(
            [
                RemoteArtifact(url="http://x.test/a", content_artifact=ca, remote=remote)
                for ca in cas
            ]
        )
    # 2 for the artifacts, 4 for the content, 1 + 1 lookups, 2 for the remote (3 on
    # PostgreSQL: its name lock), 3 for the remote artifacts (read the saved pairs, write
    # the new ones, read their ids).
    assert len(statements) <= 14, statements


async def test_saving_unchanged_remote_artifacts_again_writes_nothing(store: Store) -> None:
    """A re-sync's remote artifacts (same pairs, same urls) are read, not written again."""
    units = files(range(3))
    cas = [ContentArtifact(content=u, artifact=None, relative_path=u.path) for u in units]
    await store.save_content(units, cas)
    remote = await store.save_remote(Remote(url="http://x.test/", name="x"))

    def declared() -> list[RemoteArtifact]:
        return [
            RemoteArtifact(
                url=f"http://x.test/{ca.relative_path}", content_artifact=ca, remote=remote
            )
            for ca in cas
        ]

    first = await store.save_remote_artifacts(declared())
    with count_statements(store) as statements:
        again = await store.save_remote_artifacts(declared())
    assert [ra.pk for ra in again] == [ra.pk for ra in first]
    assert [s.split()[0].upper() for s in statements] == ["SELECT"], statements


async def test_saved_fields_win_over_a_differing_unit(store: Store) -> None:
    """Saving a unit whose natural key exists with other fields returns the saved unit."""
    [first] = await store.save_content([FileUnit(path="a", digest=sha(1), size=10)])
    same = FileUnit(path="a", digest=sha(1), size=10)
    differing = FileUnit(path="a", digest=sha(1), size=99)
    saved_same, saved_differing = await store.save_content([same, differing])
    assert saved_same is same
    assert same.pk == first.pk
    assert saved_differing is not differing
    assert isinstance(saved_differing, FileUnit)
    assert saved_differing.size == 10
    assert saved_differing.pk == first.pk


async def test_new_and_saved_units_in_one_batch_each_get_their_row(store: Store) -> None:
    """A batch of new units (whose rows are read back by id only) and saved ones with other
    fields (read back whole): each unit gets its own row, the new ones are themselves."""
    [first] = await store.save_content([FileUnit(path="a", digest=sha(1), size=10)])
    new = [FileUnit(path=f"n{i}", digest=sha(10 + i), size=i) for i in range(3)]
    differing = FileUnit(path="a", digest=sha(1), size=99)
    saved = await store.save_content([new[0], differing, *new[1:]])
    assert saved[0] is new[0]
    assert saved[2:] == new[1:]
    assert (saved[1].pk, saved[1].size) == (first.pk, 10)
    assert len({unit.pk for unit in saved}) == 4
    again = await store.save_content(
        [FileUnit(path=f"n{i}", digest=sha(10 + i), size=i) for i in range(3)]
    )
    assert [unit.pk for unit in again] == [unit.pk for unit in new]


async def test_a_later_save_with_other_fields_returns_the_saved_values(store: Store) -> None:
    """A later save of a unit or artifact whose key is saved with other fields gets the saved."""
    [first] = await store.save_content([FileUnit(path="a", digest=sha(1), size=10)])
    [first_artifact] = await store.save_artifacts([Artifact(sha256=sha(1), size=10)])
    differing = FileUnit(path="a", digest=sha(1), size=99)
    ca = ContentArtifact(content=differing, artifact=first_artifact, relative_path="a")
    [saved] = await store.save_content([differing], [ca])
    assert saved is not differing
    assert isinstance(saved, FileUnit)
    assert (saved.pk, saved.size) == (first.pk, 10)
    assert differing.pk is None  # the input was not saved: its fields are not the row's
    assert ca.content is saved
    [found] = await store.find_content([FileUnit(path="a", digest=sha(1))])
    assert isinstance(found, FileUnit)
    assert found.size == 10
    other_artifact = Artifact(sha256=sha(1), size=99)
    [saved_artifact] = await store.save_artifacts([other_artifact])
    assert saved_artifact is not other_artifact
    assert (saved_artifact.pk, saved_artifact.size) == (first_artifact.pk, 10)
    assert other_artifact.pk is None


async def test_save_cancelled_mid_transaction_commits_nothing(store: Store) -> None:
    """A save_content cancelled while its transaction runs rolls back: no row, no pk."""
    units = files(range(3))
    scope = anyio.CancelScope()
    saved: list[Any] = []

    def cancel_mid_transaction(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO content "):
            anyio.from_thread.run_sync(scope.cancel)

    sa.event.listen(store._engine, "before_cursor_execute", cancel_mid_transaction)
    try:
        with scope:
            saved = await store.save_content(units)
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", cancel_mid_transaction)
    assert scope.cancelled_caught
    assert saved == []
    assert not any(u.saved for u in units)
    assert await store.find_content(files(range(3))) == [None, None, None]


async def test_save_cancelled_while_committing_completes(store: Store) -> None:
    """A cancellation arriving once the commit began lets the save finish: rows and pks agree."""
    # Make the save refresh PostgreSQL's statistics afterwards, as a first sync's do.
    store._analyze_at["content"] = 1
    units = files(range(3))
    scope = anyio.CancelScope()
    saved: list[Any] = []

    def cancel_while_committing(conn: Any) -> None:
        anyio.from_thread.run_sync(scope.cancel)

    sa.event.listen(store._engine, "commit", cancel_while_committing)
    try:
        with scope:
            saved = await store.save_content(units)
            await anyio.sleep_forever()
    finally:
        sa.event.remove(store._engine, "commit", cancel_while_committing)
    assert scope.cancelled_caught
    assert saved == units
    assert [u.pk for u in await store.find_content(files(range(3)))] == [u.pk for u in units]
    assert all(u.saved for u in units)


async def test_text_that_is_not_unicode_is_a_content_type_error(store: Store) -> None:
    """A lone surrogate (a non-UTF-8 file name decoded by os.fsdecode) is refused clearly."""
    bad_name = os.fsdecode(b"caf\xe9.txt")
    with pytest.raises(ContentTypeError, match=r"'test\.file'.*cannot be stored"):
        await store.find_content([FileUnit(path=bad_name, digest=sha(1))])
    with pytest.raises(ContentTypeError, match=r"'test\.file'.*cannot be stored"):
        await store.save_content([FileUnit(path=bad_name, digest=sha(1))])
    with pytest.raises(ContentTypeError, match=r"'test\.package'.*cannot be stored"):
        await store.save_content([PackageUnit(name="p", version="1", requires=[bad_name])])
    assert await store.find_content([PackageUnit(name="p", version="1")]) == [None]


async def test_remote_artifacts_by_path(store: Store) -> None:
    """Remote artifacts named by (unit, relative path): inserted, moved, left, last wins;
    a path the unit lacks is returned and nothing is written for it."""
    units = files(range(3))
    cas = [ContentArtifact(content=u, artifact=None, relative_path=u.path) for u in units]
    await store.save_content(units, cas)
    r1 = await store.save_remote(Remote(url="http://one.test/", name="one"))
    r2 = await store.save_remote(Remote(url="http://two.test/", name="two"))
    assert r1.pk is not None
    assert r2.pk is not None
    pks = [u.pk or 0 for u in units]
    declared = Artifact(sha256=sha(7), size=7)
    missing = await store.save_remote_artifacts_by_path(
        [
            (pks[0], "f0", r1.pk, "http://one.test/f0", declared),
            (pks[1], "f1", r1.pk, "http://one.test/old-f1", declared),
            (pks[1], "f1", r1.pk, "http://one.test/f1", declared),  # the last one wins
            (pks[0], "f0", r2.pk, "http://two.test/f0", declared),
            (pks[2], "nope", r1.pk, "http://one.test/nope", declared),
        ]
    )
    assert missing == [(pks[2], "nope")]
    found = await store.find_remote_artifacts(cas)
    assert [(ra.content_artifact.pk, ra.remote.pk, ra.url) for ra in found] == [
        (cas[0].pk, r1.pk, "http://one.test/f0"),
        (cas[0].pk, r2.pk, "http://two.test/f0"),
        (cas[1].pk, r1.pk, "http://one.test/f1"),
    ]
    assert (found[0].sha256, found[0].size) == (sha(7), 7)
    first_pks = [ra.pk for ra in found]

    moved = Artifact(sha256=sha(8), size=8)
    assert (
        await store.save_remote_artifacts_by_path(
            [
                (pks[0], "f0", r1.pk, "http://one.test/moved/f0", moved),
                (pks[1], "f1", r1.pk, "http://one.test/f1", moved),  # same url: left alone
            ]
        )
        == []
    )
    found = await store.find_remote_artifacts(cas[:2], remote=r1)
    assert [(ra.pk, ra.url, ra.sha256) for ra in found] == [
        (first_pks[0], "http://one.test/moved/f0", sha(8)),
        (first_pks[2], "http://one.test/f1", sha(7)),
    ]


async def with_remote_artifacts(
    store: Store, count: int, remote: Remote
) -> tuple[list[FileUnit], list[ContentArtifact], list[Any]]:
    """``count`` files saved, each with its content artifact and a remote artifact of the
    saved ``remote`` at ``http://x.test/<path>``; returns the units, the content artifacts
    and the entries that saved the remote artifacts."""
    units = files(range(count))
    cas = [ContentArtifact(content=u, artifact=None, relative_path=u.path) for u in units]
    await store.save_content(units, cas)
    assert remote.pk is not None
    entries: list[Any] = [
        (u.pk, u.path, remote.pk, f"http://x.test/{u.path}", Artifact(sha256=sha(n)))
        for n, u in enumerate(units)
    ]
    assert await store.save_remote_artifacts_by_path(entries) == []
    return units, cas, entries


async def test_unchanged_remote_artifacts_by_path_are_read_in_one_query(store: Store) -> None:
    """A re-sync's remote artifacts by path cost one query and no write: on SQLite the
    check of the whole batch in the database (a WITH ... VALUES statement), on PostgreSQL
    the read of the saved pairs."""
    remote = await store.save_remote(Remote(url="http://x.test/", name="x"))
    _units, cas, entries = await with_remote_artifacts(store, 400, remote)
    with count_statements(store) as statements:
        assert await store.save_remote_artifacts_by_path(entries) == []
    first_word = "SELECT" if store._database.is_postgresql else "WITH"
    assert [s.split()[0].upper() for s in statements] == [first_word], statements
    assert len(await store.find_remote_artifacts(cas)) == 400


# One change in a batch of otherwise unchanged entries (saved as `url(n)` for remote one):
# the entries to send in its place, what comes back missing, and the urls saved after.
_CHANGES: dict[str, tuple[Callable[[int, int, int], list[tuple[Any, ...]]], bool, str]] = {
    "moved": (lambda pk, one, two: [(pk, "f7", one, "http://x.test/moved")], False, "moved"),
    "new remote": (lambda pk, one, two: [(pk, "f7", two, "http://two.test/f7")], False, "two"),
    "no such path": (lambda pk, one, two: [(pk, "nope", one, "http://x.test/f7")], True, "same"),
    "last wins, moved": (
        lambda pk, one, two: [
            (pk, "f7", one, "http://x.test/f7"),
            (pk, "f7", one, "http://x.test/moved"),
        ],
        False,
        "moved",
    ),
    "last wins, unchanged": (
        lambda pk, one, two: [
            (pk, "f7", one, "http://x.test/moved"),
            (pk, "f7", one, "http://x.test/f7"),
        ],
        False,
        "same",
    ),
}


@pytest.mark.parametrize("change", sorted(_CHANGES))
@pytest.mark.parametrize("position", [0, 150, 299])
async def test_one_change_in_a_batch_of_unchanged_remote_artifacts_is_found(
    store: Store, change: str, position: int
) -> None:
    """The whole-batch check of an unchanged re-sync misses no change, wherever it is in
    the batch: a moved url, a new remote, a path the unit lacks, and a pair given twice,
    of which the last wins whether or not it matches the saved url."""
    one = await store.save_remote(Remote(url="http://x.test/", name="one"))
    two = await store.save_remote(Remote(url="http://two.test/", name="two"))
    assert one.pk is not None
    assert two.pk is not None
    units, cas, entries = await with_remote_artifacts(store, 300, one)
    make, reports_missing, outcome = _CHANGES[change]
    target = units[7].pk
    assert target is not None
    changed = [(*e, Artifact(sha256=sha(7))) for e in make(target, one.pk, two.pk)]
    batch = [e for e in entries if e[1] != "f7"]
    batch[position:position] = changed
    missing = await store.save_remote_artifacts_by_path(batch)
    assert missing == ([(target, "nope")] if reports_missing else [])
    found = await store.find_remote_artifacts(cas)
    urls = {(ra.content_artifact.relative_path, ra.remote.name): ra.url for ra in found}
    expected = {(u.path, "one"): f"http://x.test/{u.path}" for u in units}
    if outcome == "moved":
        expected[("f7", "one")] = "http://x.test/moved"
    elif outcome == "two":
        expected[("f7", "two")] = "http://two.test/f7"
    assert urls == expected


@pytest.mark.parametrize(
    "url", ["http://x.test/f1\x00", "http://x.test/f1\ud800"], ids=["nul", "lone surrogate"]
)
async def test_a_url_extending_the_saved_one_with_text_the_database_refuses_is_refused(
    store: Store, url: str
) -> None:
    """The whole-batch check does not take a url for the saved one that it only starts
    with (SQLite cuts text short at a NUL in places): the url is refused as on a first
    save, and the saved one is kept."""
    [unit] = files([1])
    ca = ContentArtifact(content=unit, artifact=None, relative_path="f1")
    await store.save_content([unit], [ca])
    remote = await store.save_remote(Remote(url="http://x.test/", name="x"))
    assert unit.pk is not None
    assert remote.pk is not None
    saved = (unit.pk, "f1", remote.pk, "http://x.test/f1", Artifact(sha256=sha(1)))
    assert await store.save_remote_artifacts_by_path([saved]) == []
    with pytest.raises(StoreArgumentError, match=r"NUL|Unicode"):
        await store.save_remote_artifacts_by_path([(*saved[:3], url, saved[4])])
    [found] = await store.find_remote_artifacts([ca])
    assert found.url == "http://x.test/f1"


@pytest.mark.parametrize("limit", [4, 9, 999])
async def test_the_batch_check_splits_entries_beyond_sqlites_parameter_limit(
    sqlite_store: Store, limit: int
) -> None:
    """On SQLite the check binds four values per entry, up to the connection's limit on
    bound parameters; beyond it the entries take several statements, and a change in
    the last of them is still found."""
    store = sqlite_store
    remote = await store.save_remote(Remote(url="http://x.test/", name="x"))
    _units, _cas, entries = await with_remote_artifacts(store, 40, remote)
    moved = [*entries[:-1], (*entries[-1][:3], "http://x.test/moved", entries[-1][4])]
    database = store._database

    def work(conn: sa.Connection) -> tuple[bool, bool, int]:
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        before = driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
        try:
            with count_statements(store) as statements:
                unchanged = _remotes._sqlite_any_to_write(database, conn, entries)
            return unchanged, _remotes._sqlite_any_to_write(database, conn, moved), len(statements)
        finally:
            driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)

    unchanged, changed, statements = await store._run("probe the check", work, write=False)
    assert (unchanged, changed) == (False, True)
    assert statements == -(-len(entries) // max(1, min(500, limit // 4)))


async def test_remote_artifacts_by_known_content_artifact_are_written_without_a_read(
    store: Store,
) -> None:
    """Entries whose content artifact pk the caller gives are written at once (no read):
    new pairs inserted, a pair saved with another url moved, one with the same url left
    alone; entries without one are looked up as before, in the same call."""
    units = files(range(4))
    saved, ca_pks = await store.save_content_by_path(units, [(u, u.path, None) for u in units])
    remote = await store.save_remote(Remote(url="http://x.test/", name="x"))
    assert remote.pk is not None
    pks = [u.pk or 0 for u in saved]
    declared = Artifact(sha256=sha(7), size=7)

    def entry(n: int, url: str) -> tuple[int, str, int, str, Artifact]:
        assert remote.pk is not None
        return (pks[n], f"f{n}", remote.pk, url, declared)

    with count_statements(store) as statements:
        missing = await store.save_remote_artifacts_by_path(
            [entry(0, "http://x.test/f0"), entry(1, "http://x.test/f1")],
            content_artifact_pks=ca_pks[:2],
        )
    assert missing == []
    assert [s.split()[0].upper() for s in statements] == ["INSERT"], statements

    cas = await store.find_content_artifacts(saved)
    first = {ra.content_artifact.pk: ra for ra in await store.find_remote_artifacts(cas)}
    assert {pk: ra.url for pk, ra in first.items()} == {
        ca_pks[0]: "http://x.test/f0",
        ca_pks[1]: "http://x.test/f1",
    }
    missing = await store.save_remote_artifacts_by_path(
        [
            entry(0, "http://x.test/moved/f0"),  # known, moved
            entry(1, "http://x.test/f1"),  # known, unchanged
            entry(2, "http://x.test/f2"),  # looked up, new
            (pks[3], "nope", remote.pk, "http://x.test/nope", declared),  # looked up, missing
        ],
        content_artifact_pks=[ca_pks[0], ca_pks[1], None, None],
    )
    assert missing == [(pks[3], "nope")]
    after = {ra.content_artifact.pk: ra for ra in await store.find_remote_artifacts(cas)}
    assert {pk: ra.url for pk, ra in after.items()} == {
        ca_pks[0]: "http://x.test/moved/f0",
        ca_pks[1]: "http://x.test/f1",
        ca_pks[2]: "http://x.test/f2",
    }
    assert after[ca_pks[0]].pk == first[ca_pks[0]].pk
    assert after[ca_pks[1]].pk == first[ca_pks[1]].pk
    with pytest.raises(StoreArgumentError, match="one \\(or None\\) per entry"):
        await store.save_remote_artifacts_by_path([entry(0, "u")], content_artifact_pks=[])


async def test_remote_artifacts_by_path_refuse_a_nul_in_the_url(store: Store) -> None:
    """A url the database cannot store is refused before anything is written."""
    [unit] = files([1])
    await store.save_content(
        [unit], [ContentArtifact(content=unit, artifact=None, relative_path="f1")]
    )
    remote = await store.save_remote(Remote(url="http://x.test/", name="x"))
    assert unit.pk is not None
    assert remote.pk is not None
    with pytest.raises(StoreArgumentError, match="NUL"):
        await store.save_remote_artifacts_by_path(
            [(unit.pk, "f1", remote.pk, "http://x.test/\x00", Artifact(sha256=sha(1)))]
        )


async def test_content_artifacts_come_by_unit_then_path_in_code_point_order(store: Store) -> None:
    """Several files per unit, some with an artifact, paths beyond ASCII: every content
    artifact once, ordered by unit, then by path as code points compare, with its artifact."""
    artifacts = await saved_artifacts(store, range(2))
    units = files([10, 11])
    paths = ["z", "Z", "é", "e", "ä/b", "a/b", "😀", "ﬀ"]
    cas = [
        ContentArtifact(content=unit, artifact=artifacts[i % 2] if i % 3 else None, relative_path=p)
        for unit in reversed(units)
        for i, p in enumerate(paths)
    ]
    await store.save_content(units, cas)
    found = await store.find_content_artifacts(list(reversed(units)))
    expected = sorted(cas, key=lambda ca: (ca.content.pk or 0, ca.relative_path))
    assert [(ca.content.pk, ca.relative_path) for ca in found] == [
        (ca.content.pk, ca.relative_path) for ca in expected
    ]
    assert [ca.artifact.pk if ca.artifact else None for ca in found] == [
        ca.artifact.pk if ca.artifact else None for ca in expected
    ]
    assert [ca.pk for ca in found] == [ca.pk for ca in expected]
    # The artifact is read back whole (its digests and size), not only its key.
    assert [(ca.artifact.sha256, ca.artifact.size) for ca in found if ca.artifact] == [
        (ca.artifact.sha256, ca.artifact.size) for ca in expected if ca.artifact
    ]
