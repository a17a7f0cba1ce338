"""Exporting a repository version: its files under their relative paths, and a manifest."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path
from typing import Final

import anyio
import attrs

from .._exceptions import ContentNotFound, ExportError, InvalidValueError
from ..models import ContentArtifact, RepositoryVersion, check_relative_path
from ._on_demand import ContentFetcher, open_content_fetcher
from ._opened import OpenedContent
from ._workspace import Workspace

__all__ = ["DEFAULT_EXPORT_CONCURRENCY", "MANIFEST_NAME", "ExportResult", "export_version"]

logger = logging.getLogger("stageline.sync")

#: The name of the manifest an export writes at the top of its folder: a line
#: ``relative_path,sha256,size`` per file.
MANIFEST_NAME: Final = "PULP_MANIFEST"

#: Files fetched and written at once by :func:`export_version`, by default.
DEFAULT_EXPORT_CONCURRENCY: Final = 10

# Files are read from the store a page at a time, in path order.
_PAGE_SIZE: Final = 500


@attrs.frozen
class ExportResult:
    """What :func:`export_version` wrote.

    Attributes:
        repository: the repository's name.
        version: the number of the version exported.
        directory: the folder written to.
        manifest: the manifest's path.
        files: files written (the manifest aside).
        bytes: their total size.
        fetched: files that were deferred and fetched from their remotes to be written.
    """

    repository: str
    version: int
    directory: Path
    manifest: Path
    files: int
    bytes: int
    fetched: int


async def export_version(
    workspace: Workspace | None,
    repository: str,
    directory: str | os.PathLike[str],
    *,
    version: int | None = None,
    overwrite: bool = False,
    max_concurrent: int = DEFAULT_EXPORT_CONCURRENCY,
) -> ExportResult:
    """Write the files of a repository version into ``directory``, with a manifest.

    Each file is written at its relative path (folders are created), then a manifest
    named ``PULP_MANIFEST`` at the top, a line ``relative_path,sha256,size`` per file, in
    path order. Up to ``max_concurrent`` files are fetched and written at once. A file
    synced on demand (or streamed) is fetched from its remotes
    through a :class:`ContentFetcher`, validated, and so saved when its remote's policy
    is ``on_demand`` (see ``docs/on-demand.md``). A unit at the top-level path
    ``PULP_MANIFEST`` is not written: the export's own manifest takes its place.

    Every file, the manifest included, is written under a temporary name in its folder
    and renamed into place once complete, so a file at its name is always whole. When
    the export fails or is cancelled, no temporary file is left, the files written
    before stay, and the manifest is not written: its absence tells an incomplete export.

    Args:
        workspace: where the data is; None for :class:`Workspace()`.
        repository: the repository's name.
        directory: the folder to write into; created when missing. It must be empty
            unless ``overwrite`` is True.
        version: the version's number; None for the latest.
        overwrite: write into a folder that is not empty, replacing files at the same
            paths (other files are left alone).
        max_concurrent: at most this many files are fetched and written at once (the
            remotes' own download limits apply too).

    Returns:
        What was written.

    Raises:
        InvalidValueError: ``max_concurrent`` is not an int >= 1.
        ContentNotFound: there is no such repository or version.
        ExportError: the folder is not empty (and ``overwrite`` is False), or a file or
            folder cannot be written (e.g. a file stands where a folder is needed).
        DownloadError: a deferred file could not be fetched from any of its remotes.
        StorageError: a stored file is missing or damaged.
        StoreError: the database failed.
    """
    if (
        isinstance(max_concurrent, bool)
        or not isinstance(max_concurrent, int)
        or max_concurrent < 1
    ):
        raise InvalidValueError(
            f"export_version: max_concurrent must be an int >= 1, got {max_concurrent!r}"
        )
    target = Path(await anyio.Path(directory).absolute())
    async with open_content_fetcher(workspace) as fetcher:
        found = await fetcher.find_version(repository, version)
        await _prepare(target, overwrite=overwrite)
        return await _Exporter(fetcher, target, max_concurrent).run(found)


async def _prepare(target: Path, *, overwrite: bool) -> None:
    folder = anyio.Path(target)
    try:
        if await folder.exists():
            if not await folder.is_dir():
                raise ExportError(
                    f"cannot export into {target}: it is a file, not a folder; name a folder",
                    path=target,
                )
            if not overwrite and [entry async for entry in folder.iterdir()]:
                raise ExportError(
                    f"cannot export into {target}: the folder is not empty; name an empty or "
                    "new folder, or allow overwriting (--overwrite)",
                    path=target,
                )
        await folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the folder {target}: {exc}", path=target) from exc


class _Exporter:
    def __init__(self, fetcher: ContentFetcher, target: Path, max_concurrent: int) -> None:
        self.fetcher = fetcher
        self.target = target
        self.running = anyio.Semaphore(max_concurrent)
        self.files = 0
        self.bytes = 0
        self.fetched = 0

    async def run(self, version: RepositoryVersion) -> ExportResult:
        repository = version.repository.name
        manifest = self.target / MANIFEST_NAME
        async with _Replacing(manifest) as lines:
            after: str | None = None
            previous: str | None = None
            while page := await self.fetcher.store.list_content_artifacts(
                version, after=after, limit=_PAGE_SIZE
            ):
                selected: list[ContentArtifact] = []
                for content_artifact in page:
                    path = content_artifact.relative_path
                    if path == previous:
                        logger.warning(
                            "two units of version %s of %r share the path %r; exporting the first",
                            version.number,
                            repository,
                            path,
                        )
                    elif path != MANIFEST_NAME:
                        selected.append(content_artifact)
                    previous = path
                written = await self._export_all(selected)
                await lines.write(
                    "".join(
                        f"{ca.relative_path},{sha256},{size}\n"
                        for ca, (sha256, size) in zip(selected, written, strict=True)
                    ).encode()
                )
                after = page[-1].relative_path
        return ExportResult(
            repository=repository,
            version=version.number,
            directory=self.target,
            manifest=manifest,
            files=self.files,
            bytes=self.bytes,
            fetched=self.fetched,
        )

    async def _export_all(self, selected: list[ContentArtifact]) -> list[tuple[str, int]]:
        """Export a page's files, several at once; their (sha256, size) in page order."""
        written: list[tuple[str, int]] = [("", 0)] * len(selected)
        failures: list[Exception] = []

        async def export_one(index: int, content_artifact: ContentArtifact) -> None:
            try:
                written[index] = await self._export(content_artifact)
            except Exception as exc:  # the first failure stops the page; raised below
                failures.append(exc)
                tasks.cancel_scope.cancel()
            finally:
                self.running.release()

        async with anyio.create_task_group() as tasks:
            for index, content_artifact in enumerate(selected):
                await self.running.acquire()
                tasks.start_soon(export_one, index, content_artifact)
        if failures:
            raise failures[0]
        return written

    async def _export(self, content_artifact: ContentArtifact) -> tuple[str, int]:
        path = self.target / check_relative_path(content_artifact.relative_path)
        try:
            await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(
                f"cannot create the folder of {content_artifact.relative_path!r} at "
                f"{path.parent}: {exc}",
                path=path.parent,
            ) from exc
        try:
            async with self.fetcher.open(content_artifact) as opened:
                await self._write(opened, path)
        except ContentNotFound as exc:
            # A deferred file with no remote artifact: the version cannot be exported whole.
            raise ExportError(
                f"cannot export {content_artifact.relative_path!r}: {exc}", path=path
            ) from exc
        return opened.sha256, opened.size

    async def _write(self, opened: OpenedContent, path: Path) -> None:
        async with _Replacing(path) as file:
            async for chunk in opened.chunks():
                await file.write(chunk)
        self.files += 1
        self.bytes += opened.size
        if opened.fetched_from is not None:
            self.fetched += 1


class _Replacing:
    """A file written under a temporary name beside ``path``, renamed to it when whole.

    Leaving the block by an error or a cancellation removes the temporary file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        self._file: anyio.AsyncFile[bytes] | None = None

    async def __aenter__(self) -> _Replacing:
        try:
            self._file = await anyio.open_file(self.temporary, "xb")
        except OSError as exc:
            raise ExportError(f"cannot write {self.path}: {exc}", path=self.path) from exc
        return self

    async def write(self, data: bytes) -> None:
        assert self._file is not None
        try:
            await self._file.write(data)
        except OSError as exc:
            raise ExportError(f"cannot write {self.path}: {exc}", path=self.path) from exc

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        assert self._file is not None
        try:
            with anyio.CancelScope(shield=True):
                await self._file.aclose()
            if exc_type is None:
                try:
                    os.replace(self.temporary, self.path)
                except OSError as exc:
                    raise ExportError(
                        f"cannot write {self.path} (renaming {self.temporary.name} to it): {exc}",
                        path=self.path,
                    ) from exc
        finally:
            # Gone when renamed; else (an error, a cancellation) it must not stay.
            with contextlib.suppress(OSError):
                os.unlink(self.temporary)
