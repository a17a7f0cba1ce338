"""Helpers of the sync tests: run a sync, and look at what it left."""

from __future__ import annotations

from typing import Any

from stageline import DeclarativeVersion, Stage, Workspace
from stageline.models import Content, ContentArtifact, RemoteArtifact, Repository, RepositoryVersion


async def sync(
    workspace: Workspace, first_stage: Stage, *, repository: str = "files", **options: Any
) -> RepositoryVersion | None:
    """Run a DeclarativeVersion of ``first_stage`` into ``repository``."""
    dv = DeclarativeVersion(
        first_stage, Repository(name=repository), workspace=workspace, **options
    )
    return await dv.acreate()


async def latest(workspace: Workspace, repository: str = "files") -> RepositoryVersion:
    """The latest complete version of the repository."""
    async with workspace.open_store() as store:
        return await store.latest_version(await store.get_repository(repository))


async def units_in(workspace: Workspace, repository: str = "files") -> list[Content]:
    """The content of the repository's latest version."""
    async with workspace.open_store() as store:
        version = await store.latest_version(await store.get_repository(repository))
        return [unit async for chunk in store.iter_content(version) for unit in chunk]


async def paths_in(workspace: Workspace, repository: str = "files") -> dict[str, str]:
    """relative_path -> sha256 of every unit in the repository's latest version."""
    return {
        unit.relative_path: unit.sha256  # type: ignore[attr-defined]
        for unit in await units_in(workspace, repository)
    }


async def content_artifacts(
    workspace: Workspace, repository: str = "files"
) -> dict[str, ContentArtifact]:
    """relative_path -> content artifact of every unit in the latest version."""
    async with workspace.open_store() as store:
        version = await store.latest_version(await store.get_repository(repository))
        units = [unit async for chunk in store.iter_content(version) for unit in chunk]
        return {ca.relative_path: ca for ca in await store.find_content_artifacts(units)}


async def remote_artifacts(
    workspace: Workspace, repository: str = "files"
) -> dict[str, list[RemoteArtifact]]:
    """relative_path -> remote artifacts of every unit in the latest version."""
    async with workspace.open_store() as store:
        version = await store.latest_version(await store.get_repository(repository))
        units = [unit async for chunk in store.iter_content(version) for unit in chunk]
        found: dict[str, list[RemoteArtifact]] = {}
        cas = await store.find_content_artifacts(units)
        for ra in await store.find_remote_artifacts(cas):
            found.setdefault(ra.content_artifact.relative_path, []).append(ra)
        return found


def leftover_temporary_files(workspace: Workspace) -> list[str]:
    """Whatever is left in the storage's temporary root (a blocking call)."""
    root = workspace.storage.temp_root
    return sorted(str(p) for p in root.rglob("*")) if root.exists() else []
