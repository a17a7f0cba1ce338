"""The layers fit: a hand-built sync pipeline downloads, stores, saves and versions content.

This is the shape the default stages will take: the engine carries declarative content,
downloads land in the storage's temporary area, files are renamed into place, the store
saves artifacts, content and content artifacts in batches, and a new repository version
commits only when the pipeline finished.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import anyio
import attrs
import pytest

from stageline import (
    DeclarativeArtifact,
    DeclarativeContent,
    DigestMismatch,
    Stage,
    create_pipeline,
)
from stageline.download import DownloaderFactory
from stageline.models import Artifact, Content, ContentArtifact, Remote, Repository
from stageline.storage import ArtifactStorage
from stageline.store import Store, open_store

from .download._servers import LocalServer, body, running

pytestmark = pytest.mark.anyio


@attrs.define(eq=False, kw_only=True)
class FileUnit(Content):
    """A file at a path, identified by its path and digest."""

    type_name: ClassVar[str] = "tests.layers.file"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("relative_path", "sha256")
    repo_key_fields: ClassVar[tuple[str, ...]] = ("relative_path",)

    relative_path: str
    sha256: str


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A scripted HTTP server on 127.0.0.1."""
    with running(LocalServer()) as srv:
        yield srv


class Declare(Stage):
    """First stage: one unit per served file, its artifact to be downloaded."""

    def __init__(self, remote: Remote, files: dict[str, tuple[str, bytes]]) -> None:
        self.remote = remote
        self.files = files

    async def run(self) -> None:
        for name, (url, data) in self.files.items():
            digest = hashlib.sha256(data).hexdigest()
            unit = FileUnit(relative_path=name, sha256=digest)
            da = DeclarativeArtifact(
                artifact=Artifact(size=len(data), sha256=digest),
                url=url,
                relative_path=name,
                remote=self.remote,
            )
            await self.put(DeclarativeContent(unit, d_artifacts=[da]))


class Download(Stage):
    """Downloads every artifact (a stand-in for ArtifactDownloader)."""

    async def run(self) -> None:
        async for d in self.items():
            for da in d.d_artifacts:
                await da.download()
            await self.put(d)


class Save(Stage):
    """Stores files, saves artifacts and content in batches, resolves (the savers' job)."""

    def __init__(self, store: Store, storage: ArtifactStorage) -> None:
        self.store = store
        self.storage = storage

    async def run(self) -> None:
        async for batch in self.batches(minsize=2):
            artifacts = [da.artifact for d in batch for da in d.d_artifacts]
            await self.storage.store(artifacts)
            saved = await self.store.save_artifacts(artifacts)
            content_artifacts = []
            for d, artifact in zip(batch, saved, strict=True):
                d.d_artifacts[0].artifact = artifact
                content_artifacts.append(
                    ContentArtifact(
                        content=d.content,
                        artifact=artifact,
                        relative_path=d.d_artifacts[0].relative_path,
                    )
                )
            units = await self.store.save_content([d.content for d in batch], content_artifacts)
            for d, unit in zip(batch, units, strict=True):
                d.content = unit
                d.resolve()
                await self.put(d)


class Associate(Stage):
    """Adds every saved unit to the new version."""

    def __init__(self, new_version: object) -> None:
        self.new_version = new_version

    async def run(self) -> None:
        async for batch in self.batches(minsize=10):
            await self.new_version.add_content([d.content for d in batch])  # type: ignore[attr-defined]


async def sync(
    store: Store, storage: ArtifactStorage, repo: Repository, stages_before_save: list[Stage]
) -> object:
    async with (
        storage.temporary_area() as area,
        DownloaderFactory(),
        store.new_version(repo) as new_version,
    ):
        await create_pipeline(
            [*stages_before_save, Save(store, storage), Associate(new_version)], maxsize=2
        )
        # Every download was moved into storage (only the area's own lock file is left).
        assert [p.name for p in area.iterdir() if not p.name.startswith(".")] == []
    return new_version.result


async def test_a_sync_downloads_stores_saves_and_versions_content(
    tmp_path: Path, server: LocalServer
) -> None:
    """Three served files end up stored by digest, saved, and in version 1."""
    files = {
        f"f{i}.txt": (server.route(f"/f{i}.txt", body(f"file {i}".encode())), f"file {i}".encode())
        for i in range(3)
    }
    remote = Remote(url=server.url("/"))
    storage = ArtifactStorage(tmp_path / "storage")
    async with open_store(tmp_path / "db.sqlite3") as store:
        repo = await store.create_repository(Repository(name="files"))
        version = await sync(store, storage, repo, [Declare(remote, files), Download()])
        assert version is not None
        assert version.number == 1  # type: ignore[attr-defined]
        found = await store.find_content(
            [
                FileUnit(relative_path=n, sha256=hashlib.sha256(d).hexdigest())
                for n, (_, d) in files.items()
            ]
        )
        assert all(unit is not None and unit.saved for unit in found)
        for _, data in files.values():
            assert await storage.exists(hashlib.sha256(data).hexdigest())
        # The same sync again changes nothing and creates no version.
        again = await sync(store, storage, repo, [Declare(remote, files), Download()])
        assert again is None
    assert list((storage.temp_root).iterdir()) == []


async def test_a_failed_download_leaves_no_version_and_no_temporary_file(
    tmp_path: Path, server: LocalServer
) -> None:
    """A digest mismatch ends the sync with DigestMismatch; nothing is committed or left."""
    good = server.route("/good", body(b"good"))
    bad = server.route("/bad", body(b"DECLARED"))  # the declared size, other bytes
    remote = Remote(url=server.url("/"), max_retries=0)
    files = {"good": (good, b"good"), "bad": (bad, b"declared")}
    storage = ArtifactStorage(tmp_path / "storage")
    async with open_store(tmp_path / "db.sqlite3") as store:
        repo = await store.create_repository(Repository(name="files"))
        with pytest.raises(DigestMismatch) as info:
            await sync(store, storage, repo, [Declare(remote, files), Download()])
        assert info.value.url == bad
        assert (await store.latest_version(repo)).number == 0
    assert list(storage.temp_root.iterdir()) == []


async def test_cancelling_a_sync_commits_nothing(tmp_path: Path, server: LocalServer) -> None:
    """Cancellation from outside removes the version being built and the temporary area."""
    release = anyio.Event()

    class Stall(Stage):
        async def run(self) -> None:
            async for d in self.items():
                await self.put(d)
            await release.wait()  # never set: the sync is cancelled here

    files = {"a": (server.route("/a", body(b"a")), b"a")}
    remote = Remote(url=server.url("/"))
    storage = ArtifactStorage(tmp_path / "storage")
    async with open_store(tmp_path / "db.sqlite3") as store:
        repo = await store.create_repository(Repository(name="files"))
        with anyio.move_on_after(1) as scope:
            await sync(store, storage, repo, [Declare(remote, files), Download(), Stall()])
        assert scope.cancelled_caught
        assert (await store.latest_version(repo)).number == 0
    assert list(storage.temp_root.iterdir()) == []
