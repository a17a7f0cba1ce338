"""QueryExistingArtifacts matches by the strongest allowed digest a declared artifact carries."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import sqlalchemy as sa
from tests.sync._plugin import SyncFile

from stageline import DeclarativeArtifact, DeclarativeContent, StageConfigurationError
from stageline.models import Artifact, Remote
from stageline.stages import QueryExistingArtifacts
from stageline.storage import ArtifactStorage
from stageline.store import Store
from stageline.testing import run_stage

pytestmark = pytest.mark.anyio

REMOTE = Remote(url="http://127.0.0.1:9/repo/", name="r")


def declared(path: str, **digests: str) -> DeclarativeContent:
    """A unit whose one file is declared with only ``digests`` (no size)."""
    return DeclarativeContent(
        SyncFile(relative_path=path, sha256=digests.get("sha256", "0" * 64), size=0),
        d_artifacts=[
            DeclarativeArtifact(
                artifact=Artifact(**digests),  # type: ignore[arg-type]
                url=REMOTE.url + path,
                relative_path=path,
                remote=REMOTE,
            )
        ],
    )


def digest(kind: str, data: bytes) -> str:
    return hashlib.new(kind, data).hexdigest()


@pytest.mark.parametrize("kind", ["sha512", "sha384", "sha224"])
async def test_metadata_without_sha256_matches_by_its_own_digest(
    store: Store, storage: ArtifactStorage, kind: str
) -> None:
    """A declared artifact with only a sha512 (sha384, sha224) becomes the saved artifact."""
    [saved] = await store.save_artifacts([await storage.store_bytes(b"stored")])
    d = declared("a", **{kind: digest(kind, b"stored")})
    await run_stage(QueryExistingArtifacts(store), [d])
    assert d.d_artifacts[0].artifact.pk == saved.pk


@pytest.mark.parametrize("kind", ["md5", "sha1"])
async def test_forbidden_digests_are_never_used_for_matching(
    store: Store, storage: ArtifactStorage, kind: str
) -> None:
    """An md5 or sha1 alone matches nothing, though the saved artifact carries the same one."""
    [saved] = await store.save_artifacts([await storage.store_bytes(b"stored")])
    assert getattr(saved, kind) == digest(kind, b"stored")
    d = declared("a", **{kind: digest(kind, b"stored")})
    await run_stage(QueryExistingArtifacts(store), [d])
    assert not d.d_artifacts[0].artifact.saved


async def test_only_the_allowed_kinds_are_used(store: Store, storage: ArtifactStorage) -> None:
    """With sha512 not allowed, a declared sha512 alone matches nothing."""
    await store.save_artifacts([await storage.store_bytes(b"stored")])
    d = declared("a", sha512=digest("sha512", b"stored"))
    await run_stage(QueryExistingArtifacts(store, allowed_digests=["sha256", "sha384"]), [d])
    assert not d.d_artifacts[0].artifact.saved


async def test_a_saved_artifact_without_the_strongest_kind_is_found_by_a_weaker_one(
    store: Store,
) -> None:
    """Declared sha512 and sha256, saved with a sha256 only (an older sync): found by sha256."""
    [saved] = await store.save_artifacts([Artifact(sha256=digest("sha256", b"old"), size=3)])
    both = declared("a", sha256=digest("sha256", b"old"), sha512=digest("sha512", b"old"))
    await run_stage(QueryExistingArtifacts(store), [both])
    assert both.d_artifacts[0].artifact.pk == saved.pk


async def test_digests_that_contradict_the_saved_artifact_keep_the_declared_one(
    store: Store, storage: ArtifactStorage
) -> None:
    """Found by sha512, but the declared sha256 differs: the declared artifact stays."""
    await store.save_artifacts([await storage.store_bytes(b"stored")])
    d = declared("a", sha512=digest("sha512", b"stored"), sha256=digest("sha256", b"other"))
    await run_stage(QueryExistingArtifacts(store), [d])
    assert not d.d_artifacts[0].artifact.saved


async def test_one_query_per_digest_kind_for_a_whole_batch(
    store: Store, storage: ArtifactStorage
) -> None:
    """Ten sha512-only artifacts of one batch are found with one query, each its own."""
    datas = [f"file {n}".encode() for n in range(10)]
    saved = await store.save_artifacts([await storage.store_bytes(data) for data in datas])
    items = [declared(f"f{n}", sha512=digest("sha512", data)) for n, data in enumerate(datas)]
    queries: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM artifacts" in statement:
            queries.append(statement)

    sa.event.listen(store._engine, "before_cursor_execute", record)
    try:
        await run_stage(QueryExistingArtifacts(store, batch_size=10), items)
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", record)
    assert [d.d_artifacts[0].artifact.pk for d in items] == [a.pk for a in saved]
    assert len(queries) == 1
    assert "sha512" in queries[0]


async def test_allowed_digests_without_sha256_are_refused(store: Store) -> None:
    """allowed_digests must hold sha256 and known kinds only; the error names them."""
    with pytest.raises(StageConfigurationError, match="sha256"):
        QueryExistingArtifacts(store, allowed_digests=["sha512"])
    with pytest.raises(StageConfigurationError, match="'crc32'"):
        QueryExistingArtifacts(store, allowed_digests=["sha256", "crc32"])
