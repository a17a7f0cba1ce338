"""``ArtifactDownloader``: download what a sync needs and does not have yet."""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

import anyio

from .._declarative import DeclarativeArtifact, DeclarativeContent
from .._exceptions import DownloadError, ForbiddenDigestError, redact_url
from ..download import DownloaderFactory
from ..models import Artifact, DownloadPolicy
from ..progress import (
    DOWNLOADING_ARTIFACTS_CODE,
    DOWNLOADING_ARTIFACTS_MESSAGE,
    DOWNLOADING_BYTES_CODE,
    DOWNLOADING_BYTES_MESSAGE,
    ProgressReport,
)
from ._failures import DownloadFailurePolicy
from ._generic import DEFAULT_MAX_CONCURRENT_CONTENT, GenericDownloader, run_all

if TYPE_CHECKING:
    from ._acs import ACSArtifactHandler
    from ._budget import ArtifactResourceBudget

__all__ = ["ArtifactDownloader", "is_deferred", "needs_download"]

logger = logging.getLogger("stageline.sync")

#: Finished downloads remembered by sha256, so that a later unit declaring the same file
#: gets it without a second download. A later unit can miss the saved artifact only if
#: it passed ``QueryExistingArtifacts`` before the file was saved, which bounds how far
#: behind it can be by the buffers and batches between the two stages (a few thousand
#: units with the defaults); forgetting one costs a download, never correctness.
_REMEMBERED_DOWNLOADS: Final = 10_000


def is_deferred(d_artifact: DeclarativeArtifact) -> bool:
    """Whether a declared artifact is left to be fetched later rather than during the sync.

    An explicit ``deferred_download`` decides; None follows the remote's policy
    (deferred for ``on_demand`` and ``streamed``).
    """
    if d_artifact.deferred_download is not None:
        return d_artifact.deferred_download
    remote = d_artifact.remote
    return remote is not None and remote.policy is not DownloadPolicy.IMMEDIATE


def needs_download(d_artifact: DeclarativeArtifact) -> bool:
    """Whether the download stage fetches this declared artifact: unsaved, without a file,
    not deferred."""
    artifact = d_artifact.artifact
    return not artifact.saved and artifact.file is None and not is_deferred(d_artifact)


def _expects_the_same(declared: Artifact, downloaded: Artifact) -> bool:
    """Whether a file downloaded for one declaration meets another's expectations."""
    if declared.size is not None and declared.size != downloaded.size:
        return False
    return all(getattr(downloaded, kind) == value for kind, value in declared.digests().items())


class _SharedDownload:
    """One file's download, which every unit declaring its sha256 waits for."""

    __slots__ = ("artifact", "done", "error")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.artifact: Artifact | None = None
        self.error: Exception | None = None


class ArtifactDownloader(GenericDownloader):
    """Downloads each declared artifact that is not saved, has no file and is not deferred.

    Deferred means ``deferred_download=True``, or None with a remote whose policy is
    ``on_demand`` or ``streamed``. Each download uses the artifact's known size and
    digests as expectations, tries the mirrors in order, and replaces
    ``d_artifact.artifact`` with the downloaded (unsaved) artifact, whose file is in the
    sync's temporary area; :class:`ArtifactSaver` stores and saves it. A file declared
    by several units of one sync (the same sha256 and expectations) is downloaded once,
    and every one of those units gets the same artifact.

    Progress: a "Downloading Artifacts" report (``DOWNLOADING_ARTIFACTS_CODE``) counts
    the files downloaded as each one finishes, and a second one
    (``DOWNLOADING_BYTES_CODE``) their bytes. Both have no total (the stage sees the
    units as they come).

    Args:
        downloader_factory: makes the downloaders (an open factory; the sync's).
        max_concurrent_content: at most this many units downloading at once.
        failure_policy: what a failed download does (see :class:`DownloadFailurePolicy`).
        budget: the :class:`ArtifactResourceBudget` placed before this stage, if any; a
            unit the failure policy leaves out releases what it acquired there.
        acs: the :class:`ACSArtifactHandler` placed before this stage, if any: a file
            an alternate content source has is fetched there first (with the source's
            remote), and from its declared urls only when that fails.

    Raises:
        StageConfigurationError: (a ``ValueError``) ``max_concurrent_content`` < 1.
    """

    def __init__(
        self,
        downloader_factory: DownloaderFactory,
        max_concurrent_content: int = DEFAULT_MAX_CONCURRENT_CONTENT,
        *,
        failure_policy: DownloadFailurePolicy | None = None,
        budget: ArtifactResourceBudget | None = None,
        acs: ACSArtifactHandler | None = None,
    ) -> None:
        super().__init__(max_concurrent_content, failure_policy=failure_policy, budget=budget)
        self.downloader_factory = downloader_factory
        self.acs = acs
        self._downloads: OrderedDict[str, _SharedDownload] = OrderedDict()
        self._reports: tuple[ProgressReport, ProgressReport] | None = None

    async def run(self) -> None:
        """Download every unit's missing files, reporting progress; see the class.

        Raises:
            DownloadError: a download failed, and the failure policy did not skip its unit.
            Exception: what else a unit's handling raised.
        """
        async with (
            ProgressReport(DOWNLOADING_ARTIFACTS_MESSAGE, DOWNLOADING_ARTIFACTS_CODE) as files,
            ProgressReport(DOWNLOADING_BYTES_MESSAGE, DOWNLOADING_BYTES_CODE) as size,
        ):
            self._reports = (files, size)
            try:
                await super().run()
            finally:
                self._reports = None

    def _needs_handling(self, d_content: DeclarativeContent) -> bool:
        # A loop rather than any() over a generator: this runs for every unit of every
        # sync, and on most of them (on-demand, re-sync) finds nothing to download.
        for da in d_content.d_artifacts:  # noqa: SIM110 (see above)
            if needs_download(da):
                return True
        return False

    def _unit_urls(self, d_content: DeclarativeContent) -> tuple[str, ...]:
        return tuple(
            url for da in d_content.d_artifacts if needs_download(da) for url in da.all_urls
        )

    async def _handle_content_unit(self, d_content: DeclarativeContent) -> int:
        """Download the unit's missing artifacts, at once.

        Returns:
            How many files were downloaded for it (a file another unit downloaded for
            this sync does not count).

        Raises:
            DownloadError: a file could not be downloaded (the first failure; the unit's
                other downloads are cancelled).
        """
        counts: list[int] = []

        async def fetch(d_artifact: DeclarativeArtifact) -> None:
            counts.append(await self._fetch_shared(d_artifact))

        await run_all(
            [functools.partial(fetch, da) for da in d_content.d_artifacts if needs_download(da)]
        )
        return sum(counts)

    async def _fetch_shared(self, d_artifact: DeclarativeArtifact) -> int:
        """Download one artifact, or wait for the download of the same file."""
        sha256 = d_artifact.artifact.sha256
        if sha256 is None:
            await self._download(d_artifact)
            return 1
        shared = self._downloads.get(sha256)
        if shared is not None:
            self._downloads.move_to_end(sha256)
            await shared.done.wait()
            if shared.artifact is not None and _expects_the_same(
                d_artifact.artifact, shared.artifact
            ):
                d_artifact.artifact = shared.artifact
                return 0
            if shared.error is not None and shared.artifact is None:
                raise shared.error
            # Other expectations than the file that came (conflicting metadata): a
            # download of its own reports how they differ.
            await self._download(d_artifact)
            return 1
        shared = self._downloads[sha256] = _SharedDownload()
        while len(self._downloads) > _REMEMBERED_DOWNLOADS:
            oldest = next(iter(self._downloads))
            if not self._downloads[oldest].done.is_set():
                break  # in flight: bounded by the concurrency, kept until it ends
            del self._downloads[oldest]
        try:
            await self._download(d_artifact)
            shared.artifact = d_artifact.artifact
        except Exception as exc:
            # The units waiting for it fail with the same error; one declaring the file
            # later tries a download of its own (the entry is forgotten below).
            shared.error = exc
            raise
        finally:
            if shared.artifact is None and self._downloads.get(sha256) is shared:
                del self._downloads[sha256]
            shared.done.set()
        return 1

    async def _download(self, d_artifact: DeclarativeArtifact) -> None:
        """Download one artifact with this stage's factory, and count it.

        The alternate content sources that have the file come first; then its urls.
        """
        failures = await self._download_from_alternates(d_artifact)
        if failures is not None:
            try:
                await d_artifact.download(self.downloader_factory)
            except DownloadError as exc:
                for note in failures:
                    exc.add_note(note)
                raise
        self._count(d_artifact.artifact)

    async def _download_from_alternates(self, d_artifact: DeclarativeArtifact) -> list[str] | None:
        """Try the alternate sources that have the file; None once one delivered it.

        Returns:
            None when a source delivered the file (``d_artifact.artifact`` is it), else
            a note per source that failed, for the error of the declared urls.

        Raises:
            ForbiddenDigestError: an expected digest is of a kind not allowed (every url
                would refuse it).
        """
        locations = () if self.acs is None else self.acs.alternates_for(d_artifact)
        failures: list[str] = []
        for location in locations:
            alternate = DeclarativeArtifact(
                artifact=d_artifact.artifact,
                url=location.url,
                relative_path=d_artifact.relative_path,
                remote=location.remote,
            )
            try:
                await alternate.download(self.downloader_factory)
            except ForbiddenDigestError:
                raise
            except DownloadError as exc:
                url = redact_url(location.url)
                logger.info(
                    "alternate content source %r failed for %s (%s: %s); trying the next "
                    "source or the declared urls",
                    location.remote.name,
                    url,
                    type(exc).__name__,
                    exc,
                )
                failures.append(
                    f"alternate content source {location.remote.name!r} failed first, at "
                    f"{url}: {type(exc).__name__}: {exc}"
                )
                continue
            d_artifact.artifact = alternate.artifact
            return None
        return failures

    def _count(self, downloaded: Artifact) -> None:
        if self._reports is not None:
            files, size = self._reports
            files.increment()
            size.increase_by(downloaded.size or 0)
