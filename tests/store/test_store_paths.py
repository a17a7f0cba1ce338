"""Finding a version by repository name and number, and a version's files by relative path."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from store_support import FileUnit, PackageUnit, sha

from stageline import StoreArgumentError
from stageline.models import Artifact, Content, ContentArtifact, Repository, RepositoryVersion
from stageline.store import Store, open_store

pytestmark = pytest.mark.anyio


async def file_with_path(
    store: Store, n: int, path: str, *, artifact: Artifact | None = None
) -> Content:
    """A saved FileUnit with one content artifact at ``path``."""
    unit = FileUnit(path=path, digest=sha(n))
    [saved] = await store.save_content(
        [unit], [ContentArtifact(content=unit, artifact=artifact, relative_path=path)]
    )
    return saved


async def version_with(store: Store, repository: Repository, units: list[Content]) -> None:
    async with store.new_version(repository) as new:
        await new.add_content(units)


async def test_find_version_by_name_and_number(store: Store) -> None:
    """Versions are found by name and number, the latest by None; anything else is None."""
    repository = await store.create_repository(Repository(name="repo", description="d"))
    await store.create_repository(Repository(name="other"))
    await version_with(store, repository, [await file_with_path(store, 1, "a")])
    latest = await store.find_version("repo")
    assert latest is not None
    assert (latest.number, latest.content_count, latest.complete) == (1, 1, True)
    assert (latest.repository.name, latest.repository.pk) == ("repo", repository.pk)
    assert latest.repository.description == "d"
    zero = await store.find_version("repo", 0)
    assert zero is not None
    assert zero.number == 0
    other = await store.find_version("other")
    assert other is not None
    assert other.number == 0
    for name, number in [
        ("nope", None),
        ("repo", 2),
        ("repo", -1),
        ("repo", 2**31),
        ("repo", 10**30),
        ("re\x00po", None),
        ("\udcff", None),
        ("", None),
    ]:
        assert await store.find_version(name, number) is None, (name, number)


async def test_find_version_skips_the_version_being_built(store: Store) -> None:
    """A version still being built is not found, by number nor as the latest."""
    repository = await store.create_repository(Repository(name="repo"))
    async with store.new_version(repository) as new:
        await new.add_content([await file_with_path(store, 1, "a")])
        assert await store.find_version("repo", 1) is None
        latest = await store.find_version("repo")
        assert latest is not None
        assert latest.number == 0


async def test_find_version_refuses_arguments_of_the_wrong_type(store: Store) -> None:
    """A name that is no str, or a number that is no int, is a StoreArgumentError."""
    with pytest.raises(StoreArgumentError, match="repository must be"):
        await store.find_version(1)  # type: ignore[arg-type]
    with pytest.raises(StoreArgumentError, match="number must be an int"):
        await store.find_version("repo", True)
    with pytest.raises(StoreArgumentError, match="number must be an int"):
        await store.find_version("repo", "1")  # type: ignore[arg-type]


async def test_files_are_found_by_exact_path_in_their_version_only(store: Store) -> None:
    """Each version finds the unit it holds at a path, with its artifact or None."""
    repository = await store.create_repository(Repository(name="repo"))
    [artifact] = await store.save_artifacts([Artifact(sha256=sha(100), size=5)])
    old_a = await file_with_path(store, 1, "dir/a", artifact=artifact)
    deferred_b = await file_with_path(store, 2, "dir/b")
    await version_with(store, repository, [old_a, deferred_b])
    new_a = await file_with_path(store, 3, "dir/a")
    await version_with(store, repository, [new_a])  # replaces old_a: same repo key
    elsewhere = await store.create_repository(Repository(name="elsewhere"))
    await version_with(store, elsewhere, [await file_with_path(store, 4, "dir/c")])
    one = await store.get_version(repository, 1)
    two = await store.get_version(repository, 2)

    [found] = await store.find_content_artifacts_by_path(one, "dir/a")
    assert (found.content.pk, found.relative_path, found.pk is not None) == (
        old_a.pk,
        "dir/a",
        True,
    )
    assert isinstance(found.content, FileUnit)
    assert found.content.digest == sha(1)
    assert found.artifact is not None
    assert (found.artifact.pk, found.artifact.sha256, found.artifact.size) == (
        artifact.pk,
        sha(100),
        5,
    )
    [found] = await store.find_content_artifacts_by_path(two, "dir/a")
    assert (found.content.pk, found.artifact) == (new_a.pk, None)
    [found] = await store.find_content_artifacts_by_path(two, "dir/b")
    assert (found.content.pk, found.artifact) == (deferred_b.pk, None)
    assert await store.find_content_artifacts_by_path(two, "dir/c") == []  # another repository's
    zero = await store.get_version(repository, 0)
    assert await store.find_content_artifacts_by_path(zero, "dir/a") == []


@pytest.mark.parametrize(
    "path",
    [
        "../dir/a",
        "/dir/a",
        "dir//a",
        "dir/./a",
        "dir/x/../a",
        "dir/a/",
        "DIR/A",
        "dir%2Fa",
        "dir/%61",
        "dir",
        "",
        "dir/a\x00",
        "dir/\udcff",
    ],
)
async def test_a_path_is_never_normalised(store: Store, path: str) -> None:
    """Only the very path saved finds a file: no normalisation, decoding or prefix match."""
    repository = await store.create_repository(Repository(name="repo"))
    await version_with(store, repository, [await file_with_path(store, 1, "dir/a")])
    version = await store.get_version(repository, 1)
    assert await store.find_content_artifacts_by_path(version, path) == []
    assert len(await store.find_content_artifacts_by_path(version, "dir/a")) == 1


async def test_units_sharing_a_path_come_in_pk_order_up_to_the_limit(store: Store) -> None:
    """Units without a repository key may share a path: all come, by pk, at most ``limit``."""
    repository = await store.create_repository(Repository(name="repo"))
    units: list[Content] = [PackageUnit(name="p", version=str(n)) for n in range(3)]
    saved = await store.save_content(
        units, [ContentArtifact(content=u, artifact=None, relative_path="p.pkg") for u in units]
    )
    await version_with(store, repository, saved)
    version = await store.get_version(repository, 1)
    found = await store.find_content_artifacts_by_path(version, "p.pkg")
    assert [ca.content.pk for ca in found] == sorted(u.pk or 0 for u in saved)
    [first] = await store.find_content_artifacts_by_path(version, "p.pkg", limit=1)
    assert first.content.pk == found[0].content.pk


async def test_path_lookup_refuses_arguments_it_cannot_use(store: Store) -> None:
    """An unsaved version, a limit below 1 or a path that is no str is a StoreArgumentError."""
    repository = await store.create_repository(Repository(name="repo"))
    version = await store.get_version(repository, 0)
    with pytest.raises(StoreArgumentError, match="must be saved"):
        await store.find_content_artifacts_by_path(
            RepositoryVersion(repository=repository, number=0), "a"
        )
    for limit in (0, True, 1.5):
        with pytest.raises(StoreArgumentError, match="limit must be"):
            await store.find_content_artifacts_by_path(version, "a", limit=limit)  # type: ignore[arg-type]
    with pytest.raises(StoreArgumentError, match="relative_path must be a str"):
        await store.find_content_artifacts_by_path(version, b"a")  # type: ignore[arg-type]


async def test_path_lookup_starts_from_the_relative_path_index(tmp_path: Path) -> None:
    """On SQLite, the lookup walks the relative_path index, never a table or a version."""
    path = tmp_path / "plans.db"
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if "relative_path" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, params))

    async with open_store(path) as store:
        repository = await store.create_repository(Repository(name="repo"))
        units = [await file_with_path(store, n, f"f{n}") for n in range(20)]
        await version_with(store, repository, units)
        version = await store.get_version(repository, 1)
        sa.event.listen(store._engine, "before_cursor_execute", record)
        assert len(await store.find_content_artifacts_by_path(version, "f7")) == 1
        sa.event.remove(store._engine, "before_cursor_execute", record)
    assert len(statements) == 1
    [(statement, params)] = statements
    with sqlite3.connect(path) as conn:
        plan = " ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", params))
    assert "ix_content_artifacts_relative_path" in plan, plan
    assert "SCAN" not in plan, plan
