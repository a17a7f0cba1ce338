"""Serving the files of repository versions, fetching deferred ones on demand.

A content artifact synced with an ``on_demand`` or ``streamed`` remote has no artifact:
its remote artifacts say where the file is. :class:`ContentFetcher` opens such a file by
downloading it from them, one after the other, validated like any download; the file is
then saved (``on_demand``, and ``immediate``) or used once and removed (``streamed``).
Concurrent opens of one deferred file share one download (see ``_flights``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from .._exceptions import (
    ContentNotFound,
    DownloadError,
    StorageError,
    StoreArgumentError,
    redact_url,
)
from ..download import DownloaderFactory, DownloadResult
from ..models import Artifact, ContentArtifact, DownloadPolicy, RemoteArtifact, RepositoryVersion
from ..storage import ArtifactStorage, use_temp_dir
from ..store import Store
from ._flights import Fetched, Flights
from ._opened import OpenedContent, TemporaryCopy
from ._workspace import Workspace

__all__ = ["ContentFetcher", "open_content", "open_content_fetcher"]

logger = logging.getLogger("stageline.sync")


def _version_label(repository: str, version: int | None) -> str:
    which = "the latest version" if version is None else f"version {version}"
    return f"{which} of repository {repository!r}"


def _agrees(artifact: Artifact, remote_artifact: RemoteArtifact) -> bool:
    """Whether a saved artifact is the file ``remote_artifact`` describes, by what both know."""
    if None not in (artifact.size, remote_artifact.size) and artifact.size != remote_artifact.size:
        return False
    theirs = remote_artifact.digests()
    return all(
        theirs[name] == value for name, value in artifact.digests().items() if name in theirs
    )


class ContentFetcher:
    """Opens the files of repository versions, fetching deferred ones from their remotes.

    The library call behind a content app: find a version and a file in it by path, then
    open it and read its bytes, whole or by range::

        async with open_content_fetcher(workspace) as fetcher:
            version = await fetcher.find_version("repo")          # the latest
            content_artifact = await fetcher.find(version, "dir/file.txt")
            async with fetcher.open(content_artifact) as opened:
                opened.size, opened.sha256                        # Content-Length, ETag
                async for chunk in opened.chunks(start, end):     # a Range, or all
                    ...

    A file whose artifact is saved is read from the storage. A deferred one (synced with
    an ``on_demand`` or ``streamed`` remote) is downloaded from its remote artifacts, in
    the order of their remotes' primary keys, each with its own size and digests as
    expectations and the url scheme policy of its remote; when one fails the next is
    tried. A saved artifact with the sha256 a remote artifact expects serves the file
    without any download. The whole file is downloaded and validated before its first
    byte is offered, so a client never receives bytes that turn out wrong.

    What happens to a downloaded file depends on the policy of the remote it came from:
    ``streamed`` never keeps it (the copy is removed when its readers close); any other
    policy stores it in the storage and saves its artifact and the content artifact's
    link to it in one transaction, so the next open reads it locally.

    Concurrent opens of one deferred content artifact (in this fetcher) share one
    download: the first opener downloads, the others wait and then read the saved file,
    or share the one streamed copy. An error of that download reaches every waiter (the
    same exception object). When the downloading opener is cancelled, a waiter
    starts the download again. Separate fetchers (or processes) may each download a file
    once; saving it stays correct.

    Paths are looked up in the database only, exactly as given: nothing a client sends
    is ever joined to a filesystem path, and a path outside the version is not found.

    The fetcher uses what it is given and closes none of it: an open store, the storage,
    an open downloader factory, and a temporary directory (on the storage's filesystem,
    so that a fetched file is moved, not copied, into place). :func:`open_content_fetcher`
    opens all of them from a :class:`Workspace`. A fetcher may be used by many tasks at
    once, on asyncio or Trio.

    Args:
        store: an open store.
        storage: the artifact storage.
        downloader_factory: an open downloader factory.
        temporary_area: where downloads are written, e.g. a
            ``storage.temporary_area()``.
    """

    def __init__(
        self,
        store: Store,
        storage: ArtifactStorage,
        downloader_factory: DownloaderFactory,
        *,
        temporary_area: str | os.PathLike[str],
    ) -> None:
        self.store = store
        self.storage = storage
        self.downloader_factory = downloader_factory
        self.temporary_area = Path(temporary_area)
        self._flights = Flights()

    # -- finding -------------------------------------------------------------------------

    async def find_version(self, repository: str, version: int | None = None) -> RepositoryVersion:
        """A complete version of the repository named ``repository``.

        Args:
            repository: the repository's name.
            version: the version's number; None for the latest.

        Raises:
            ContentNotFound: (a ``LookupError``) there is no such repository or version.
            StoreArgumentError: ``repository`` is not a str or ``version`` not an int.
            StoreError: the database failed.
        """
        found = await self.store.find_version(repository, version)
        if found is None:
            if version is None:
                message = f"there is no repository named {repository!r}"
            else:
                message = (
                    f"repository {repository!r} has no version {version} (or there is no "
                    "repository of that name); list its versions to see which exist"
                )
            raise ContentNotFound(message, repository=repository, version=version)
        return found

    async def find(self, version: RepositoryVersion, relative_path: str) -> ContentArtifact:
        """The content artifact at ``relative_path`` in ``version``, looked up exactly.

        When units of the version share the path (their content type has no repository
        key), the one saved first is returned and a warning logged.

        Raises:
            ContentNotFound: (a ``LookupError``) the version has no file at that path.
            StoreArgumentError: the version is not saved, or ``relative_path`` is no str.
            ContentTypeError: the unit's content type is declared by no imported module.
            StoreError: the database failed.
        """
        found = await self.store.find_content_artifacts_by_path(version, relative_path, limit=2)
        name = version.repository.name
        if not found:
            raise ContentNotFound(
                f"{_version_label(name, version.number)} has no file {relative_path!r}",
                repository=name,
                version=version.number,
                relative_path=relative_path,
            )
        if len(found) > 1:
            logger.warning(
                "units %s and %s of %s share the path %r; serving unit %s",
                found[0].content.pk,
                found[1].content.pk,
                _version_label(name, version.number),
                relative_path,
                found[0].content.pk,
            )
        return found[0]

    # -- opening -------------------------------------------------------------------------

    @asynccontextmanager
    async def open_path(
        self, repository: str, version: int | None, relative_path: str
    ) -> AsyncIterator[OpenedContent]:
        """Find and open a file: :meth:`find_version`, :meth:`find`, then :meth:`open`.

        Raises:
            ContentNotFound: no such repository, version or file.
            Exception: what those three raise.
        """
        found = await self.find(await self.find_version(repository, version), relative_path)
        async with self.open(found) as opened:
            yield opened

    @asynccontextmanager
    async def open(self, content_artifact: ContentArtifact) -> AsyncIterator[OpenedContent]:
        """Open a saved content artifact's file, fetching it first when it is deferred.

        Use it as ``async with fetcher.open(content_artifact) as opened:``; read inside
        the block. On leaving it (normally, by an error or a cancellation) the file is
        closed and a streamed copy no one else reads is removed.

        Args:
            content_artifact: a saved content artifact, e.g. from :meth:`find`.

        Yields:
            The opened file.

        Raises:
            StoreArgumentError: the content artifact is not saved.
            ContentNotFound: the file is deferred and no remote artifact says where it is.
            DownloadError: every remote artifact failed: the last one's error, with a
                note (``__notes__``) per earlier one saying how it failed. A size or
                digest that differs is a ``SizeMismatch`` or ``DigestMismatch``; a url its
                remote may not fetch an ``UnsafeURLError``. Nothing was saved.
            MalformedDigestError: a remote artifact's digest is not hex of its length.
            StorageError: the stored file is missing or damaged, or a file could not be
                written, moved or read.
            StoreError: the database failed.
            DownloaderFactoryClosed: the downloader factory was closed.
        """
        if content_artifact.pk is None:
            raise StoreArgumentError(
                f"content artifact {content_artifact.relative_path!r} must be saved first "
                "(it has no pk); open one that fetcher.find() returned"
            )
        if content_artifact.artifact is not None:
            fetched = Fetched(artifact=content_artifact.artifact)
        else:
            fetched = await self._flights.fetch(
                content_artifact.pk, lambda: self._fetch_now(content_artifact)
            )
        try:
            opened = await self._opened(content_artifact, fetched)
            async with opened:
                yield opened
        finally:
            if fetched.copy is not None:
                fetched.copy.release()

    async def _opened(self, content_artifact: ContentArtifact, fetched: Fetched) -> OpenedContent:
        artifact = fetched.artifact
        sha256 = artifact.sha256
        if sha256 is None:
            raise StorageError(f"artifact {artifact!r} has no sha256; it cannot be read")
        path = fetched.copy.path if fetched.copy is not None else self.storage.path_for(sha256)
        try:
            size = (await anyio.Path(path).stat()).st_size
        except OSError as exc:
            raise StorageError(
                f"the file of {content_artifact.relative_path!r} (artifact {sha256}) is "
                f"missing from {path} ({exc}): it was removed outside stageline, and a "
                "sync will not fetch a saved artifact again; restore the storage from a backup"
            ) from exc
        if artifact.size is not None and size != artifact.size:
            raise StorageError(
                f"the file of {content_artifact.relative_path!r} at {path} has {size} bytes, "
                f"not the {artifact.size} of its artifact {sha256}: it was damaged outside "
                "stageline; restore the storage from a backup"
            )
        return OpenedContent(
            content_artifact,
            artifact,
            path=path,
            size=size,
            sha256=sha256,
            fetched_from=fetched.url,
            saved=fetched.copy is None,
        )

    # -- fetching ------------------------------------------------------------------------

    async def _fetch_now(self, content_artifact: ContentArtifact) -> Fetched:
        """Fetch a deferred file: the one download that concurrent openers share."""
        # Saved since it was looked up? (By a download that ended just before this one
        # began, by a sync, or by another process.)
        for current in await self.store.find_content_artifacts([content_artifact.content]):
            if current.pk == content_artifact.pk and current.artifact is not None:
                return Fetched(artifact=current.artifact)
        remote_artifacts = await self.store.find_remote_artifacts([content_artifact])
        if not remote_artifacts:
            raise ContentNotFound(
                f"the file {content_artifact.relative_path!r} of unit "
                f"{content_artifact.content.pk} is deferred, and no remote artifact says "
                "where to fetch it; sync the repository again to record its remote",
                relative_path=content_artifact.relative_path,
            )
        found = await self._saved_copy(content_artifact, remote_artifacts)
        if found is not None:
            return found
        errors: list[tuple[RemoteArtifact, DownloadError]] = []
        for remote_artifact in remote_artifacts:
            try:
                result = await self._download(remote_artifact)
            except DownloadError as exc:
                errors.append((remote_artifact, exc))
                continue
            return await self._keep(content_artifact, remote_artifact, result)
        raise _last_error(content_artifact, errors)

    async def _saved_copy(
        self, content_artifact: ContentArtifact, remote_artifacts: Sequence[RemoteArtifact]
    ) -> Fetched | None:
        """A saved artifact with the sha256 a remote artifact expects, when it is stored."""
        wanted = {ra.sha256 for ra in remote_artifacts if ra.sha256 is not None}
        if not wanted:
            return None
        saved = await self.store.find_artifacts(wanted)
        for remote_artifact in remote_artifacts:
            artifact = saved.get(remote_artifact.sha256 or "")
            if (
                artifact is None
                or artifact.sha256 is None
                or not _agrees(artifact, remote_artifact)
            ):
                continue
            if not await self.storage.exists(artifact.sha256):
                continue
            if remote_artifact.remote.policy is not DownloadPolicy.STREAMED:
                await self._link(content_artifact, artifact)
            return Fetched(artifact=artifact)
        return None

    async def _download(self, remote_artifact: RemoteArtifact) -> DownloadResult:
        with use_temp_dir(self.temporary_area):
            downloader = self.downloader_factory.get_downloader(
                remote_artifact.remote,
                url=remote_artifact.url,
                expected_digests=remote_artifact.digests(),
                expected_size=remote_artifact.size,
            )
            return await downloader.run()

    async def _keep(
        self,
        content_artifact: ContentArtifact,
        remote_artifact: RemoteArtifact,
        result: DownloadResult,
    ) -> Fetched:
        """Save the downloaded file, or hand it out as a temporary copy (streamed)."""
        policy = remote_artifact.remote.policy
        if policy is DownloadPolicy.STREAMED:
            logger.info(
                "fetched %r from %s (streamed: not kept)",
                content_artifact.relative_path,
                remote_artifact.remote.name,
            )
            return Fetched(
                artifact=Artifact(**dict(result.artifact_attributes)),  # type: ignore[arg-type]
                url=redact_url(result.url),
                copy=TemporaryCopy(result.path),
            )
        artifact = Artifact(file=result.path, **dict(result.artifact_attributes))  # type: ignore[arg-type]
        try:
            with use_temp_dir(self.temporary_area):
                await self.storage.store([artifact])
            saved = await self._link(content_artifact, artifact, save=True)
        finally:
            # Moved into the storage when stored; else (an error, a cancellation) it
            # must not stay in the temporary area.
            with contextlib.suppress(OSError):
                os.unlink(result.path)
        logger.info(
            "fetched %r from %s and saved it (artifact %s)",
            content_artifact.relative_path,
            remote_artifact.remote.name,
            saved.sha256,
        )
        return Fetched(artifact=saved, url=redact_url(result.url))

    async def _link(
        self, content_artifact: ContentArtifact, artifact: Artifact, *, save: bool = False
    ) -> Artifact:
        """Make ``artifact`` the content artifact's file (saving it first when asked).

        One transaction: the artifact's row and the content artifact's link to it are
        written together or not at all.
        """
        async with self.store.unit_of_work() as writes:
            if save:
                [artifact] = await writes.save_artifacts([artifact])
            await writes.update_content_artifacts(
                [
                    ContentArtifact(
                        content=content_artifact.content,
                        artifact=artifact,
                        relative_path=content_artifact.relative_path,
                        pk=content_artifact.pk,
                    )
                ]
            )
        return artifact


def _last_error(
    content_artifact: ContentArtifact, errors: list[tuple[RemoteArtifact, DownloadError]]
) -> DownloadError:
    """The last remote artifact's error, with a note per earlier one."""
    last = errors[-1][1]
    count = len(errors)
    for number, (remote_artifact, error) in enumerate(errors[:-1], start=1):
        how = "failed first" if number == 1 else "failed too"
        last.add_note(
            f"remote artifact {number} of {count} for {content_artifact.relative_path!r}, "
            f"remote {remote_artifact.remote.name!r} ({error.url}), {how}: "
            f"{type(error).__name__}: {error}"
        )
    return last


@asynccontextmanager
async def open_content_fetcher(workspace: Workspace | None = None) -> AsyncIterator[ContentFetcher]:
    """A :class:`ContentFetcher` on a workspace's store, storage and downloads.

    Opens, for the block, the workspace's store (or uses it, when the workspace is
    open), a temporary area in its storage, and a downloader factory made by
    ``workspace.downloader_factory()``; all are closed when the block ends, and the
    temporary area is removed with whatever a download left in it.

    Args:
        workspace: where the data is; the default is :class:`Workspace()`.

    Yields:
        The fetcher; share it between the requests of a content app.

    Raises:
        StoreError: the store cannot be opened.
        StorageError: the temporary area cannot be created.
    """
    workspace = workspace if workspace is not None else Workspace()
    async with (
        workspace.open_store() as store,
        workspace.storage.temporary_area() as area,
        workspace.downloader_factory() as factory,
    ):
        yield ContentFetcher(store, workspace.storage, factory, temporary_area=area)


@asynccontextmanager
async def open_content(
    workspace: Workspace | None,
    repository: str,
    version: int | None,
    relative_path: str,
) -> AsyncIterator[OpenedContent]:
    """Open one file of a repository version, fetching it when it is deferred.

    For a single file; to serve many, keep one :func:`open_content_fetcher` open::

        async with open_content(workspace, "repo", None, "dir/file.txt") as opened:
            data = await opened.read()

    Args:
        workspace: where the data is; None for :class:`Workspace()`.
        repository: the repository's name.
        version: the version's number; None for the latest.
        relative_path: the file's path in the version, exactly as saved.

    Yields:
        The opened file (see :class:`OpenedContent`).

    Raises:
        ContentNotFound: no such repository, version or file.
        Exception: what :meth:`ContentFetcher.open` raises.
    """
    async with (
        open_content_fetcher(workspace) as fetcher,
        fetcher.open_path(repository, version, relative_path) as opened,
    ):
        yield opened
