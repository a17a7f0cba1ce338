"""Helpers of the file plugin tests: publish a folder on a local server, look at a sync."""

from __future__ import annotations

import hashlib
import urllib.parse
from pathlib import Path

from stageline import Workspace
from stageline.models import ContentArtifact
from stageline.plugins.file import FileContent

from ..download._servers import LocalServer, body


def line(path: str, data: bytes) -> str:
    """The manifest line of ``data`` at ``path``."""
    return f"{path},{hashlib.sha256(data).hexdigest()},{len(data)}\n"


def write_repository(directory: Path, files: dict[str, bytes], *extra_lines: str) -> bytes:
    """Write ``files`` and a PULP_MANIFEST listing them (and ``extra_lines``); return it."""
    lines = []
    for path, data in files.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        lines.append(line(path, data))
    manifest = "".join([*lines, *extra_lines]).encode()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "PULP_MANIFEST").write_bytes(manifest)
    return manifest


def serve_directory(server: LocalServer, directory: Path, prefix: str = "/repo/") -> str:
    """Route every file under ``directory`` at ``prefix``; return the root manifest's url."""
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            relative = path.relative_to(directory).as_posix()
            server.route(prefix + urllib.parse.quote(relative), body(path.read_bytes()))
    return server.url(prefix + "PULP_MANIFEST")


def requested(server: LocalServer, prefix: str = "/repo/") -> list[str]:
    """The paths requested under ``prefix``, in order, unquoted and without it."""
    return [
        urllib.parse.unquote(r.path.removeprefix(prefix))
        for r in server.requests
        if r.path.startswith(prefix)
    ]


async def files_in(workspace: Workspace, repository: str) -> dict[str, str]:
    """relative_path -> sha256 of every file in the repository's latest version."""
    async with workspace.open_store() as store:
        version = await store.latest_version(await store.get_repository(repository))
        found = {}
        async for chunk in store.iter_content(version):
            for unit in chunk:
                assert isinstance(unit, FileContent)
                found[unit.relative_path] = unit.sha256
        return found


async def content_artifacts(workspace: Workspace, repository: str) -> dict[str, ContentArtifact]:
    """relative_path -> content artifact of every unit in the latest version."""
    async with workspace.open_store() as store:
        version = await store.latest_version(await store.get_repository(repository))
        units = [unit async for chunk in store.iter_content(version) for unit in chunk]
        return {ca.relative_path: ca for ca in await store.find_content_artifacts(units)}


def leftover_temporary_files(workspace: Workspace) -> list[str]:
    """Whatever is left in the storage's temporary root (a blocking call)."""
    root = workspace.storage.temp_root
    return sorted(str(p) for p in root.rglob("*")) if root.exists() else []
