"""``FileFirstStage``: declares the files a manifest lists, sub-repositories included."""

from __future__ import annotations

import collections
import logging
import os
import re
import urllib.parse
from pathlib import Path
from typing import Final

import anyio

from ..._declarative import DeclarativeArtifact, DeclarativeContent
from ..._exceptions import DownloadError, InvalidValueError, PipelineError
from ..._stage import Stage
from ...models import Artifact, Remote, trusted_artifact
from ...progress import ProgressReport
from ...storage import ArtifactStorage
from ._content import MANIFEST_NAME, FileContent
from ._manifest import ManifestEntry, ManifestReader

__all__ = [
    "DEFAULT_READ_SIZE",
    "PARSING_METADATA_CODE",
    "PARSING_METADATA_MESSAGE",
    "FileFirstStage",
    "base_url",
]

#: Bytes read from a manifest at a time.
DEFAULT_READ_SIZE: Final = 256 * 1024

#: The progress report of the entries declared, over every manifest read.
PARSING_METADATA_MESSAGE: Final = "Parsing Metadata"
PARSING_METADATA_CODE: Final = "sync.parsing.metadata"

logger = logging.getLogger("stageline.plugins.file")

# What urllib.parse.quote(path, safe="/") leaves as it is: such a path needs no quoting.
_NEEDS_NO_QUOTING: Final = re.compile(r"[A-Za-z0-9_.~/-]*")


def base_url(manifest_url: str) -> str:
    """The folder of ``manifest_url``: what entries' relative paths are joined to.

    Its query and fragment are dropped (they belong to the manifest's url, not its files').
    """
    parts = urllib.parse.urlsplit(manifest_url)
    folder = parts.path.rpartition("/")[0] + "/"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, folder, "", ""))


class FileFirstStage(Stage):
    """Declares one :class:`FileContent` per manifest entry, walking sub-repositories.

    The root manifest is ``remote.url`` (downloaded in the sync, unless ``manifest``
    names a copy downloaded already). It is read in chunks and each entry is put as soon
    as its line is read, so memory does not grow with the manifest. An entry named
    ``PULP_MANIFEST`` (in a sub-folder) is a sub-repository: it is declared like any file
    but downloaded whatever the remote's policy (``deferred_download=False``); once the
    manifest that lists it is read, the stage awaits its ``resolution()``, reads it from
    the storage and declares its entries relative to its folder, to any depth. Each level
    lies one folder deeper, so the walk ends; a sub-repository listed twice is read once.

    With ``on_error="skip"``, a sub-repository whose manifest cannot be downloaded is
    left out (its manifest unit is among the sync's skipped units) and logged.

    Args:
        remote: the root manifest's url and the download settings.
        storage: where saved sub-repository manifests are read from (the sync's).
        manifest: a local copy of the root manifest, already downloaded; None downloads
            ``remote.url`` in the sync.
        read_size: bytes read from a manifest at a time.

    Attributes:
        units: the entries declared so far (files and sub-repository manifests).
        declared_bytes: the sum of their sizes.
        bytes_read: the manifest bytes read so far (every manifest).
        manifests: the relative path of each manifest read, in order (``""`` for the root).

    Raises:
        InvalidValueError: (a ``ValueError``) ``read_size`` is not an int >= 1.
        ManifestError: (from ``run``) a manifest line is malformed or names an unsafe path.
        DownloadError: (from ``run``) the root manifest could not be downloaded.
    """

    def __init__(
        self,
        remote: Remote,
        storage: ArtifactStorage,
        *,
        manifest: str | os.PathLike[str] | None = None,
        read_size: int = DEFAULT_READ_SIZE,
    ) -> None:
        if isinstance(read_size, bool) or not isinstance(read_size, int) or read_size < 1:
            raise InvalidValueError(
                f"FileFirstStage: read_size must be an int >= 1, got {read_size!r}"
            )
        self.remote = remote
        self.storage = storage
        self.manifest = Path(manifest) if manifest is not None else None
        self.read_size = read_size
        self.units = 0
        self.declared_bytes = 0
        self.bytes_read = 0
        self.manifests: list[str] = []
        # Sub-repository manifests queued so far, by path: one listed twice is read once,
        # so that an upstream repeating its entries cannot make the walk grow
        # exponentially with its depth.
        self._queued: set[str] = set()
        self._base = base_url(remote.url)
        self._report: ProgressReport | None = None

    def url_of(self, relative_path: str) -> str:
        """The url of a file at ``relative_path`` in the repository."""
        if _NEEDS_NO_QUOTING.fullmatch(relative_path) is not None:
            return self._base + relative_path
        return self._base + urllib.parse.quote(relative_path, safe="/")

    async def run(self) -> None:
        async with ProgressReport(
            message=PARSING_METADATA_MESSAGE, code=PARSING_METADATA_CODE
        ) as report:
            self._report = report
            root = self.manifest if self.manifest is not None else await self._download_root()
            async with await anyio.open_file(root, "rb") as file:
                pending = collections.deque(await self._read(file, self.remote.url, ""))
            while pending:
                d = pending.popleft()
                unit = d.content
                assert isinstance(unit, FileContent)
                try:
                    await d.resolution()
                except PipelineError as exc:
                    if not isinstance(exc.__cause__, DownloadError):
                        raise
                    logger.warning(
                        "sub-repository %s left out: its manifest could not be downloaded (%s)",
                        unit.relative_path,
                        exc.__cause__,
                    )
                    continue
                folder = unit.relative_path.rpartition("/")[0] + "/"
                artifact = d.d_artifacts[0].artifact
                async with await self.storage.open(artifact) as file:
                    pending.extend(await self._read(file, self.url_of(unit.relative_path), folder))

    async def _download_root(self) -> Path:
        d_artifact = DeclarativeArtifact(
            artifact=Artifact(),
            url=self.remote.url,
            relative_path=MANIFEST_NAME,
            remote=self.remote,
        )
        await d_artifact.download()
        assert d_artifact.artifact.file is not None
        return Path(d_artifact.artifact.file)

    async def _read(
        self, file: anyio.AsyncFile[bytes], url: str, folder: str
    ) -> list[DeclarativeContent]:
        """Declare the entries of one manifest; return its sub-repositories' items."""
        self.manifests.append(folder.removesuffix("/"))
        reader = ManifestReader(url)
        sub_repositories = []
        while True:
            chunk = await file.read(self.read_size)
            self.bytes_read += len(chunk)
            for entry in reader.feed(chunk) if chunk else reader.end():
                is_manifest = entry.is_manifest
                d = self._declare(entry, folder, is_manifest)
                await self.put(d)
                if is_manifest:
                    path = d.d_artifacts[0].relative_path
                    if path in self._queued:
                        logger.warning("%s is listed again in %s; it is read once", path, url)
                    else:
                        self._queued.add(path)
                        sub_repositories.append(d)
            if not chunk:
                return sub_repositories

    def _declare(self, entry: ManifestEntry, folder: str, is_manifest: bool) -> DeclarativeContent:
        path = folder + entry.relative_path
        artifact = DeclarativeArtifact(
            # The reader checked both values as Artifact's validators do (64 hex digits,
            # lowered; a whole number of bytes below 2**63): the artifact is made without
            # checking them a second time, for every line of every manifest.
            artifact=trusted_artifact(
                size=entry.size,
                md5=None,
                sha1=None,
                sha224=None,
                sha256=entry.sha256,
                sha384=None,
                sha512=None,
                file=None,
                pk=None,
            ),
            url=self.url_of(path),
            relative_path=path,
            remote=self.remote,
            deferred_download=False if is_manifest else None,
        )
        self.units += 1
        self.declared_bytes += entry.size
        assert self._report is not None
        self._report.increment()
        return DeclarativeContent(
            FileContent(relative_path=path, sha256=entry.sha256, size=entry.size),
            d_artifacts=[artifact],
        )
