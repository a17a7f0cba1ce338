"""Artifact files are located by sha256 and the storage root, never by a stored path."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from store_support import FileUnit, sha
from tests._source import parse_file

import stageline.store
from stageline.models import Artifact, ContentArtifact
from stageline.storage import ArtifactStorage
from stageline.store import Store, open_store

pytestmark = pytest.mark.anyio


async def test_artifacts_read_without_a_storage_have_no_file(store: Store, tmp_path: Path) -> None:
    """A store opened without a storage stores no path and returns artifacts with file None."""
    downloaded = tmp_path / "download.tmp"
    [saved] = await store.save_artifacts([Artifact(sha256=sha(1), size=3, file=downloaded)])
    # The caller's own object keeps the file it had; the database did not keep it.
    assert saved.file == downloaded
    assert (await store.find_artifacts([sha(1)]))[sha(1)].file is None
    [unit] = await store.save_content([FileUnit(path="a", digest=sha(1))])
    await store.save_content(
        [unit], [ContentArtifact(content=unit, artifact=saved, relative_path="a")]
    )
    [ca] = await store.find_content_artifacts([unit])
    assert ca.artifact is not None
    assert ca.artifact.pk == saved.pk
    assert ca.artifact.file is None


async def test_artifacts_read_with_a_storage_are_located_by_sha256(
    database_url: str, tmp_path: Path
) -> None:
    """With a storage, every artifact returned has file = storage.path_for(sha256)."""
    storage = ArtifactStorage(tmp_path / "storage")
    stored = await storage.store_bytes(b"hello")
    assert stored.sha256 is not None
    where = storage.path_for(stored.sha256)
    async with open_store(database_url, storage=storage) as store:
        [saved] = await store.save_artifacts([stored])
        found = (await store.find_artifacts([stored.sha256]))[stored.sha256]
        # Saved again with another size: the saved row wins, and it is located too.
        [other] = await store.save_artifacts([Artifact(sha256=stored.sha256, size=99)])
        [unit] = await store.save_content([FileUnit(path="h", digest=stored.sha256)])
        await store.save_content(
            [unit], [ContentArtifact(content=unit, artifact=saved, relative_path="h")]
        )
        [ca] = await store.find_content_artifacts([unit])
    assert saved is stored
    assert saved.file == found.file == where
    assert other is not stored
    assert (other.size, other.file) == (5, where)
    assert ca.artifact is not None
    assert ca.artifact.file == where
    assert ca.artifact.file.read_bytes() == b"hello"


async def test_moved_storage_keeps_every_artifact_reachable(
    database_url: str, tmp_path: Path
) -> None:
    """Moving the storage folder (or mounting it elsewhere) leaves every artifact reachable."""
    first = ArtifactStorage(tmp_path / "first")
    stored = await first.store_bytes(b"payload")
    assert stored.sha256 is not None
    async with open_store(database_url, storage=first) as store:
        await store.save_artifacts([stored])
    os.rename(tmp_path / "first", tmp_path / "moved")
    moved = ArtifactStorage(tmp_path / "moved")
    async with open_store(database_url, storage=moved) as store:
        found = (await store.find_artifacts([stored.sha256]))[stored.sha256]
    assert found.file == moved.path_for(stored.sha256)
    assert await moved.read_bytes(found) == b"payload"


def test_the_store_does_not_import_the_storage() -> None:
    """The store locates files through a protocol: it never imports stageline.storage."""
    package = Path(stageline.store.__file__).parent
    for module in sorted(package.rglob("*.py")):
        for node in ast.walk(parse_file(module)):
            if isinstance(node, ast.ImportFrom):
                target = "." * node.level + (node.module or "")
                assert "storage" not in target, f"{module.name} imports {target}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert "stageline.storage" not in alias.name, f"{module.name}: {alias.name}"
