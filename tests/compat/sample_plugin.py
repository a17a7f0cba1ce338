"""A catalog plugin written the asyncio-era way, ported to stageline_compat.

The upstream publishes a CATALOG: lines "file,PATH,SHA256,SIZE" for files and
"index,PATH,SHA256" for index files, which list further files in the same form. Files
listed in an index belong to that index's section.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import attrs

from stageline.models import Artifact, Content, Repository, RepositoryVersion
from stageline.store import NewVersion
from stageline_compat import (
    ArtifactDownloader,
    ArtifactSaver,
    ContentSaver,
    DeclarativeArtifact,
    DeclarativeContent,
    DeclarativeVersion,
    ProgressReport,
    QueryExistingArtifacts,
    QueryExistingContents,
    Remote,
    RemoteArtifactSaver,
    ResolveContentFutures,
    Stage,
)

# -- the models ----------------------------------------------------------------------


@attrs.define(eq=False, kw_only=True)
class CatalogFile(Content):
    """A file of the catalog; a newer file at the same path replaces it."""

    type_name: ClassVar[str] = "catalog.file"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("relative_path", "sha256")
    repo_key_fields: ClassVar[tuple[str, ...]] = ("relative_path",)

    relative_path: str
    sha256: str
    size: int
    section: str = ""


@attrs.define(eq=False, kw_only=True)
class CatalogIndex(Content):
    """An index file listing more files of the catalog."""

    type_name: ClassVar[str] = "catalog.index"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("relative_path", "sha256")
    repo_key_fields: ClassVar[tuple[str, ...]] = ("relative_path",)

    relative_path: str
    sha256: str


@attrs.define(eq=False, kw_only=True)
class CatalogRemote(Remote):
    """Where a catalog is published."""


# -- the stages ----------------------------------------------------------------------


def read_lines(path: Any) -> list[list[str]]:
    """The comma-separated fields of each line of the file at ``path``."""
    return [line.split(",") for line in Path(path).read_text().splitlines() if line]


class CatalogFirstStage(Stage):
    """Declares the catalog's files and indexes, then the files each index lists."""

    def __init__(self, remote: CatalogRemote, deferred_download: bool) -> None:
        super().__init__()
        self.remote = remote
        self.deferred_download = deferred_download

    async def run(self) -> None:
        async with ProgressReport(
            message="Downloading Metadata", code="sync.downloading.metadata", total=1
        ) as pb:
            downloader = self.remote.get_downloader(url=self.remote.url + "CATALOG")
            result = await downloader.run()
            await pb.aincrement()

        lines = await asyncio.to_thread(read_lines, result.path)
        async with ProgressReport(
            message="Parsing Metadata", code="sync.parsing.metadata", total=len(lines)
        ) as pb:
            indexes = []
            for kind, path, sha256, *size in lines:
                if kind == "index":
                    d_index = self.index(path, sha256)
                    indexes.append((d_index, d_index.get_or_create_future()))
                    await self.put(d_index)
                else:
                    await self.put(self.file(path, sha256, int(size[0]), section=""))
                await pb.aincrement()

            for d_index, future in indexes:
                index = await future
                artifact = d_index.d_artifacts[0].artifact
                listed = await asyncio.to_thread(read_lines, artifact.file)
                pb.total += len(listed)
                for _kind, path, sha256, size in listed:
                    await self.put(self.file(path, sha256, int(size), index.relative_path))
                    await pb.aincrement()

    def index(self, path: str, sha256: str) -> DeclarativeContent:
        artifact = Artifact(sha256=sha256)
        da = DeclarativeArtifact(
            artifact=artifact,
            url=self.remote.url + path,
            relative_path=path,
            remote=self.remote,
            deferred_download=False,
        )
        return DeclarativeContent(
            content=CatalogIndex(relative_path=path, sha256=sha256), d_artifacts=[da]
        )

    def file(self, path: str, sha256: str, size: int, section: str) -> DeclarativeContent:
        artifact = Artifact(sha256=sha256, size=size)
        da = DeclarativeArtifact(
            artifact=artifact,
            url=self.remote.url + path,
            relative_path=path,
            remote=self.remote,
            deferred_download=self.deferred_download,
        )
        unit = CatalogFile(relative_path=path, sha256=sha256, size=size)
        return DeclarativeContent(content=unit, d_artifacts=[da], extra_data={"section": section})


class CatalogContentSaver(ContentSaver):
    """Gives each new file its section before it is saved."""

    async def _pre_save(self, batch: list[Any]) -> None:
        for d_content in batch:
            unit = d_content.content
            if isinstance(unit, CatalogFile) and unit.pk is None:
                unit.section = d_content.extra_data["section"]


class CatalogDeclarativeVersion(DeclarativeVersion):
    """The default pipeline with the catalog's content saver."""

    def pipeline_stages(self, new_version: NewVersion) -> list[Any]:
        return [
            self.first_stage,
            QueryExistingArtifacts(),
            ArtifactDownloader(),
            ArtifactSaver(),
            QueryExistingContents(),
            CatalogContentSaver(),
            RemoteArtifactSaver(),
            ResolveContentFutures(),
        ]


# -- the sync ------------------------------------------------------------------------


def synchronize(
    remote: CatalogRemote, repository: Repository, mirror: bool = False, **options: Any
) -> RepositoryVersion | None:
    """Sync ``remote`` into ``repository``; ``options`` go to the DeclarativeVersion."""
    deferred_download = remote.policy != "immediate"
    first_stage = CatalogFirstStage(remote, deferred_download)
    dv = CatalogDeclarativeVersion(first_stage, repository, mirror=mirror, **options)
    return dv.create()
