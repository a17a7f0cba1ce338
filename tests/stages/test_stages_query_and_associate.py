"""The query stages, ResolveContentFutures, and (un)association into a new version."""

from __future__ import annotations

import pytest
from tests.sync._plugin import SyncFile, file_unit, sha256_of

from stageline import DeclarativeContent, StageConfigurationError
from stageline.models import Artifact, Remote, Repository
from stageline.stages import (
    ContentAssociation,
    ContentUnassociation,
    QueryExistingArtifacts,
    QueryExistingContents,
    ResolveContentFutures,
)
from stageline.storage import ArtifactStorage
from stageline.store import Store
from stageline.testing import run_stage, sample_items

pytestmark = pytest.mark.anyio

REMOTE = Remote(url="http://127.0.0.1:9/repo/", name="r")


def unit(path: str, data: bytes) -> DeclarativeContent:
    return file_unit(REMOTE, path, sha256_of(data), len(data))


async def test_query_existing_contents_swaps_saved_units_only(store: Store) -> None:
    """A unit with a saved natural key becomes the saved unit; a new one stays unsaved."""
    old, new = unit("old", b"old"), unit("new", b"new")
    [saved] = await store.save_content([unit("old", b"old").content])
    assert await run_stage(QueryExistingContents(store), [old, new]) == [old, new]
    assert old.content.pk == saved.pk
    assert not new.content.saved


async def test_query_existing_artifacts_swaps_artifacts_that_agree(
    store: Store, storage: ArtifactStorage
) -> None:
    """Same sha256 and size: swapped; another declared size: kept; no sha256: kept."""
    [saved] = await store.save_artifacts([await storage.store_bytes(b"stored")])
    agreeing, disagreeing, unknown = unit("a", b"stored"), unit("b", b"stored"), unit("c", b"x")
    disagreeing.d_artifacts[0].artifact.size = 99
    unknown.d_artifacts[0].artifact = Artifact(size=1)
    await run_stage(QueryExistingArtifacts(store), [agreeing, disagreeing, unknown])
    assert agreeing.d_artifacts[0].artifact.pk == saved.pk
    assert not disagreeing.d_artifacts[0].artifact.saved
    assert not unknown.d_artifacts[0].artifact.saved


@pytest.mark.parametrize("stage_class", [QueryExistingContents, QueryExistingArtifacts])
async def test_a_batch_size_below_one_is_refused(store: Store, stage_class: type) -> None:
    """batch_size=0 is refused with the argument named."""
    with pytest.raises(StageConfigurationError, match="batch_size"):
        stage_class(store, batch_size=0)


async def test_resolve_content_futures_resolves_every_item() -> None:
    """Every item comes out resolved, in order."""
    items = sample_items(3)
    assert await run_stage(ResolveContentFutures(), items) == items
    assert all(d.resolved for d in items)


async def saved_units(store: Store, *paths: str) -> list[DeclarativeContent]:
    items = [unit(path, path.encode()) for path in paths]
    saved = await store.save_content([d.content for d in items])
    for d, content in zip(items, saved, strict=True):
        d.content = content
    return items


@pytest.mark.parametrize("mirror", [False, True])
async def test_association_adds_the_stream_and_mirror_removes_the_rest(
    store: Store, mirror: bool
) -> None:
    """Additive keeps a, b, c and adds d; mirror keeps only what the stream brought, a and d."""
    repository = await store.create_repository(Repository(name="files"))
    async with store.new_version(repository) as first:
        await first.add_content([d.content for d in await saved_units(store, "a", "b", "c")])
    stream = await saved_units(store, "a", "d")
    async with store.new_version(repository) as new_version:
        stages = [ContentAssociation(new_version, batch_size=1)]
        if mirror:
            stages.append(ContentUnassociation(new_version))  # type: ignore[arg-type]
        for stage in stages:
            assert await run_stage(stage, stream) == stream
    version = new_version.result
    assert version is not None
    units = [u async for chunk in store.iter_content(version) for u in chunk]
    paths = sorted(u.relative_path for u in units if isinstance(u, SyncFile))
    assert paths == (["a", "d"] if mirror else ["a", "b", "c", "d"])
