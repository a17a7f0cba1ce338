"""A small test plugin: files listed in a manifest, served by a real local HTTP server.

``Upstream`` serves files and a ``MANIFEST`` (one ``path,sha256,size`` line per file)
under ``/repo/``. ``ManifestFirstStage`` reads the manifest and declares a ``SyncFile``
unit per line. ``IndexFirstStage`` does multi-level discovery: the manifest lists index
files, which it declares as ``SyncIndex`` units to download even on demand, awaits,
reads from the storage, and whose lines (files and further indexes) it declares in turn.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

import anyio
import attrs

from stageline import DeclarativeArtifact, DeclarativeContent, Stage
from stageline.models import Artifact, Content, Remote
from stageline.storage import ArtifactStorage

from ..download._servers import LocalServer, body


@attrs.define(eq=False, kw_only=True)
class SyncFile(Content):
    """A file at a path; one per path in a version."""

    type_name: ClassVar[str] = "tests.sync.file"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("relative_path", "sha256")
    repo_key_fields: ClassVar[tuple[str, ...]] = ("relative_path",)

    relative_path: str
    sha256: str
    size: int


@attrs.define(eq=False, kw_only=True)
class SyncIndex(Content):
    """An index file listing files and further indexes; one per path in a version."""

    type_name: ClassVar[str] = "tests.sync.index"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("relative_path", "sha256")
    repo_key_fields: ClassVar[tuple[str, ...]] = ("relative_path",)

    relative_path: str
    sha256: str


def sha256_of(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class Upstream:
    """A repository served under ``/repo/``: files and a manifest listing them."""

    def __init__(self, server: LocalServer, *, prefix: str = "/repo/") -> None:
        self.server = server
        self.prefix = prefix
        self.files: dict[str, bytes] = {}
        self.indexes: dict[str, list[str]] = {}
        self.manifest_lines: list[str] = []
        self._publish()

    def url(self, path: str) -> str:
        """The url of ``path`` in the repository."""
        return self.server.url(self.prefix + path)

    def remote(self, **settings: object) -> Remote:
        """A remote for this repository (no retries unless asked for)."""
        settings.setdefault("max_retries", 0)
        settings.setdefault("name", "upstream")
        return Remote(url=self.server.url(self.prefix), **settings)  # type: ignore[arg-type]

    def add(self, path: str, data: bytes, *, listed: bool = True) -> str:
        """Serve ``data`` at ``path`` (and list it in the manifest); return its sha256."""
        self.files[path] = data
        self.server.route(self.prefix + path, body(data))
        if listed:
            self.manifest_lines = [
                line for line in self.manifest_lines if line.split(",")[0] != path
            ]
            self.manifest_lines.append(f"{path},{sha256_of(data)},{len(data)}")
            self._publish()
        return sha256_of(data)

    def remove(self, path: str) -> None:
        """Drop ``path`` from the manifest."""
        self.manifest_lines = [line for line in self.manifest_lines if line.split(",")[0] != path]
        self._publish()

    def add_index(self, path: str, lines: list[str], *, listed: bool = True) -> bytes:
        """Serve an index file: lines ``file,PATH,SHA256,SIZE`` or ``index,PATH,SHA256``."""
        data = "".join(f"{line}\n" for line in lines).encode()
        self.add(path, data, listed=listed)
        return data

    def file_line(self, path: str) -> str:
        """An index line for the served file ``path``."""
        data = self.files[path]
        return f"file,{path},{sha256_of(data)},{len(data)}"

    def index_line(self, path: str) -> str:
        """An index line for the served index ``path``."""
        return f"index,{path},{sha256_of(self.files[path])}"

    def file_requests(self) -> list[str]:
        """The paths requested so far, manifest excluded."""
        return [
            r.path for r in self.server.requests if not r.path.endswith(self.prefix + "MANIFEST")
        ]

    def _publish(self) -> None:
        data = "".join(f"{line}\n" for line in self.manifest_lines).encode()
        self.server.route(self.prefix + "MANIFEST", body(data))


async def read_manifest(remote: Remote) -> list[list[str]]:
    """Download the remote's MANIFEST (in the running sync) and split its lines."""
    manifest = DeclarativeArtifact(
        artifact=Artifact(),
        url=remote.url + "MANIFEST",
        relative_path="MANIFEST",
        remote=remote,
    )
    await manifest.download()
    assert manifest.artifact.file is not None
    text = await anyio.Path(manifest.artifact.file).read_text()
    return [line.split(",") for line in text.splitlines() if line]


def file_unit(remote: Remote, path: str, sha256: str, size: int) -> DeclarativeContent:
    """A declared file unit, its artifact at ``remote.url + path``."""
    return DeclarativeContent(
        SyncFile(relative_path=path, sha256=sha256, size=size),
        d_artifacts=[
            DeclarativeArtifact(
                artifact=Artifact(size=size, sha256=sha256),
                url=remote.url + path,
                relative_path=path,
                remote=remote,
            )
        ],
    )


class ManifestFirstStage(Stage):
    """Declares one ``SyncFile`` per line of the remote's MANIFEST."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    async def run(self) -> None:
        for path, sha256, size in await read_manifest(self.remote):
            await self.put(file_unit(self.remote, path, sha256, int(size)))


class IndexFirstStage(Stage):
    """Multi-level discovery: the MANIFEST lists indexes; each index, files and indexes.

    Each index is declared with ``deferred_download=False`` (downloaded whatever the
    remote's policy), put, awaited with ``resolution()``, read from the storage, and its
    lines declared in turn, level by level.

    Attributes:
        read: the paths of the indexes read, in order.
    """

    def __init__(self, remote: Remote, storage: ArtifactStorage) -> None:
        self.remote = remote
        self.storage = storage
        self.read: list[str] = []

    async def run(self) -> None:
        level = [
            self._index(path, sha256) for path, sha256, _size in await read_manifest(self.remote)
        ]
        while level:
            for d in level:
                await self.put(d)
            following: list[DeclarativeContent] = []
            for d in level:
                await d.resolution()
                following.extend(await self._children(d))
            level = following

    def _index(self, path: str, sha256: str) -> DeclarativeContent:
        return DeclarativeContent(
            SyncIndex(relative_path=path, sha256=sha256),
            d_artifacts=[
                DeclarativeArtifact(
                    artifact=Artifact(sha256=sha256),
                    url=self.remote.url + path,
                    relative_path=path,
                    remote=self.remote,
                    deferred_download=False,
                )
            ],
        )

    async def _children(self, index: DeclarativeContent) -> list[DeclarativeContent]:
        path = index.d_artifacts[0].relative_path
        self.read.append(path)
        data = await self.storage.read_bytes(index.d_artifacts[0].artifact)
        following = []
        for line in data.decode().splitlines():
            kind, child, sha256, *size = line.split(",")
            if kind == "index":
                following.append(self._index(child, sha256))
            else:
                await self.put(file_unit(self.remote, child, sha256, int(size[0])))
        return following
