"""The default stages with the asyncio era's constructors, and hand-wiring to queues.

Each class here is the native stage of the same name (``stageline.stages``) mixed with the
shim's :class:`~stageline_compat.Stage`, so it can be wired to ``asyncio.Queue``s and run
with ``await stage()``, and made the old way: without a store, a storage or a downloader
factory, which it then takes from the running ``stageline_compat.DeclarativeVersion`` when
it starts (see ``_context``). Given explicitly, they are used as given.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, cast

from stageline import stages as native
from stageline.download import DownloaderFactory
from stageline.progress import (
    ASSOCIATING_CONTENT_CODE,
    ASSOCIATING_CONTENT_MESSAGE,
    UNASSOCIATING_CONTENT_CODE,
    UNASSOCIATING_CONTENT_MESSAGE,
)
from stageline.stages import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENT_CONTENT,
    AlternateContentSource,
    DownloadFailurePolicy,
)
from stageline.storage import ArtifactStorage
from stageline.store import NewVersion, Store

from ._context import current_sync, running_sync
from ._declarative import RemoteDownloads
from ._progress import ProgressReport
from ._stage import Stage

__all__ = [
    "ACSArtifactHandler",
    "ArtifactDownloader",
    "ArtifactResourceBudget",
    "ArtifactSaver",
    "ContentAssociation",
    "ContentSaver",
    "ContentUnassociation",
    "GenericDownloader",
    "QueryExistingArtifacts",
    "QueryExistingContents",
    "RemoteArtifactSaver",
    "ResolveContentFutures",
]


def _store_of(stage: Any, given: Store | None) -> Store:
    return given if given is not None else running_sync(stage, "store").store


class QueryExistingContents(Stage, native.QueryExistingContents):
    """See :class:`stageline.stages.QueryExistingContents`; ``store`` defaults to the sync's.

    Args:
        store: where to look; None: the running sync's.
        batch_size: items per query.
    """

    def __init__(self, store: Store | None = None, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(cast(Store, store), batch_size=batch_size)
        self._given_store = store

    async def run(self) -> None:
        """See the native stage.

        Raises:
            StageConfigurationError: made without a store, outside a shimmed sync.
            StoreError: the database failed.
        """
        self.store = _store_of(self, self._given_store)
        await super().run()


class QueryExistingArtifacts(Stage, native.QueryExistingArtifacts):
    """See :class:`stageline.stages.QueryExistingArtifacts`; ``store`` and
    ``allowed_digests`` default to the sync's (its downloader factory's).

    Args:
        store: where to look; None: the running sync's.
        batch_size: items per query.
        allowed_digests: the digest kinds trusted for matching; None: the sync's, else
            stageline's default.

    Raises:
        StageConfigurationError: (a ``ValueError``) a bad ``batch_size`` or digest kind.
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        allowed_digests: Iterable[str] | None = None,
    ) -> None:
        if allowed_digests is None:
            super().__init__(cast(Store, store), batch_size=batch_size)
        else:
            super().__init__(
                cast(Store, store), batch_size=batch_size, allowed_digests=allowed_digests
            )
        self._given_store = store
        self._given_digests = allowed_digests

    async def run(self) -> None:
        """See the native stage.

        Raises:
            StageConfigurationError: made without a store, outside a shimmed sync.
            StoreError: the database failed.
        """
        store = _store_of(self, self._given_store)
        sync = current_sync()
        if self._given_digests is None and sync is not None:
            # The native stage works its matching kinds out when it is made: make it again
            # with the sync's allowed digests.
            native.QueryExistingArtifacts.__init__(
                self,
                store,
                batch_size=self.batch_size,
                allowed_digests=sync.downloader_factory.allowed_digests,
            )
        self.store = store
        await super().run()


class GenericDownloader(Stage, native.GenericDownloader):
    """Base of download stages, as in the asyncio era: implement ``_handle_content_unit``.

    ``async def _handle_content_unit(self, d_content) -> int`` downloads what one unit
    needs and returns how many files it downloaded; up to ``max_concurrent_content``
    units run at once, in order, and the first failure cancels the pending downloads and
    fails the stage (see :class:`stageline.stages.GenericDownloader`). The stage reports
    its downloads in a :class:`ProgressReport` named by the class attributes
    ``PROGRESS_REPORTING_MESSAGE`` and ``PROGRESS_REPORTING_CODE``.

    Args:
        max_concurrent_content: at most this many units handled at once (an int >= 1).
        failure_policy: what a failed unit does; None: the running sync's, else fail.
        budget: the ``ArtifactResourceBudget`` before this stage, if any.

    Raises:
        StageConfigurationError: (a ``ValueError``) ``max_concurrent_content`` < 1.
    """

    PROGRESS_REPORTING_MESSAGE: ClassVar[str] = "Downloading"
    PROGRESS_REPORTING_CODE: ClassVar[str] = "sync.downloading"

    _report: ProgressReport | None = None
    _downloaded: int = 0

    def __init__(
        self,
        max_concurrent_content: int = DEFAULT_MAX_CONCURRENT_CONTENT,
        *,
        failure_policy: DownloadFailurePolicy | None = None,
        budget: native.ArtifactResourceBudget | None = None,
    ) -> None:
        super().__init__(max_concurrent_content, failure_policy=failure_policy, budget=budget)
        self._given_policy = failure_policy

    # The native stage adds each unit's count to ``downloaded``; counting it in the report
    # as it is added is what the asyncio era's stage reported, unit by unit.
    @property
    def downloaded(self) -> int:
        """How many files the stage downloaded so far."""
        return self._downloaded

    @downloaded.setter
    def downloaded(self, value: int) -> None:
        report = self._report
        if report is not None and value > self._downloaded:
            report.increase_by(value - self._downloaded)
        self._downloaded = value

    async def run(self) -> None:
        """Handle every unit; see the class.

        Raises:
            Exception: what a unit's handling raised (unless the failure policy skips it).
        """
        sync = current_sync()
        if self._given_policy is None and sync is not None:
            self.failure_policy = sync.failure_policy
        async with ProgressReport(
            self.PROGRESS_REPORTING_MESSAGE, self.PROGRESS_REPORTING_CODE
        ) as report:
            self._report = report
            try:
                await super().run()
            finally:
                self._report = None


class ArtifactDownloader(Stage, native.ArtifactDownloader):
    """See :class:`stageline.stages.ArtifactDownloader`, made the asyncio era's way.

    ``ArtifactDownloader(max_concurrent_content=200)``. Each file is downloaded through its
    remote's ``get_downloader(url=...)`` when the remote has one (a
    :class:`stageline_compat.Remote`, a plugin's remote, a test's mock), else through the
    downloader factory open in context (inside a sync, the sync's).

    Args:
        max_concurrent_content: at most this many units downloading at once.
        downloader_factory: makes the downloaders instead; None: as said above.
        failure_policy: what a failed download does; None: the running sync's, else fail.
        budget: the ``ArtifactResourceBudget`` before this stage, if any.
        acs: the ``ACSArtifactHandler`` before this stage, if any.

    Raises:
        StageConfigurationError: (a ``ValueError``) ``max_concurrent_content`` < 1.
    """

    def __init__(
        self,
        max_concurrent_content: int = DEFAULT_MAX_CONCURRENT_CONTENT,
        *,
        downloader_factory: DownloaderFactory | None = None,
        failure_policy: DownloadFailurePolicy | None = None,
        budget: native.ArtifactResourceBudget | None = None,
        acs: native.ACSArtifactHandler | None = None,
    ) -> None:
        # The native stage only calls get_downloader(remote, url=..., ...) on its factory.
        factory = downloader_factory or cast(DownloaderFactory, RemoteDownloads())
        super().__init__(
            factory,
            max_concurrent_content,
            failure_policy=failure_policy,
            budget=budget,
            acs=acs,
        )
        self._given_policy = failure_policy

    async def run(self) -> None:
        """See the native stage.

        Raises:
            DownloadError: a download failed, and the failure policy did not skip its unit.
            Exception: what else a unit's handling raised.
        """
        sync = current_sync()
        if self._given_policy is None and sync is not None:
            self.failure_policy = sync.failure_policy
        await super().run()


class ArtifactSaver(Stage, native.ArtifactSaver):
    """See :class:`stageline.stages.ArtifactSaver`; ``store`` and ``storage`` default to
    the sync's.

    Args:
        store: where artifacts are saved; None: the running sync's.
        storage: where their files go; None: the running sync's.
        batch_size: items per store call.
        budget: the budget to flush for and release, if any.
    """

    def __init__(
        self,
        store: Store | None = None,
        storage: ArtifactStorage | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        budget: native.ArtifactResourceBudget | None = None,
    ) -> None:
        super().__init__(
            cast(Store, store), cast(ArtifactStorage, storage), batch_size=batch_size, budget=budget
        )
        self._given = (store, storage)

    async def run(self) -> None:
        """See the native stage.

        Raises:
            StageConfigurationError: made without a store or storage, outside a shimmed sync.
            StorageError: a file could not be stored.
            StoreError: the database failed.
        """
        store, storage = self._given
        self.store = _store_of(self, store)
        self.storage = storage if storage is not None else running_sync(self, "storage").storage
        await super().run()


class ContentSaver(Stage, native.ContentSaver):
    """See :class:`stageline.stages.ContentSaver`; ``store`` defaults to the sync's.

    Subclass it and override ``async def _pre_save(self, batch)`` and
    ``async def _post_save(self, batch)``; while they run, ``self.unit_of_work`` is the
    batch's open transaction (write a plugin's own tables through it).

    Args:
        store: where the content is saved; None: the running sync's.
        batch_size: items per batch.
    """

    def __init__(self, store: Store | None = None, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(cast(Store, store), batch_size=batch_size)
        self._given_store = store

    async def run(self) -> None:
        """See the native stage.

        Raises:
            StageConfigurationError: made without a store, outside a shimmed sync.
            StoreError: the database failed.
            Exception: what a hook raised.
        """
        self.store = _store_of(self, self._given_store)
        await super().run()


class RemoteArtifactSaver(Stage, native.RemoteArtifactSaver):
    """See :class:`stageline.stages.RemoteArtifactSaver`; ``store`` defaults to the sync's.

    Args:
        fix_mismatched_remote_artifacts: accepted for the asyncio era's signature; it
            changes nothing, since stageline always updates a remote artifact whose url
            moved.
        store: where they are saved; None: the running sync's.
        batch_size: items per batch.
    """

    def __init__(
        self,
        fix_mismatched_remote_artifacts: bool = False,
        *,
        store: Store | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__(cast(Store, store), batch_size=batch_size)
        self.fix_mismatched_remote_artifacts = fix_mismatched_remote_artifacts
        self._given_store = store

    async def run(self) -> None:
        """See the native stage.

        Raises:
            StageConfigurationError: made without a store, outside a shimmed sync.
            SyncError: a declared relative path matches no content artifact of its unit.
            StoreError: the database failed.
        """
        self.store = _store_of(self, self._given_store)
        await super().run()


class ResolveContentFutures(Stage, native.ResolveContentFutures):
    """See :class:`stageline.stages.ResolveContentFutures`: resolves every item (and its
    future, for a shimmed ``DeclarativeContent``)."""


class ContentAssociation(Stage, native.ContentAssociation):
    """Adds the content to the new version; with ``mirror`` also removes the rest, at the end.

    As in the asyncio era, one stage does both: ``ContentAssociation(new_version,
    mirror)``. (stageline's own pipeline uses a second stage,
    ``stageline.stages.ContentUnassociation``, for the removal.) Progress: "Associating
    Content" and, with ``mirror``, "Un-Associating Content".

    Args:
        new_version: the version being built.
        mirror: True to remove from it every unit the stream did not bring.
        batch_size: items per store call.
    """

    def __init__(
        self, new_version: NewVersion, mirror: bool = False, *, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        super().__init__(new_version, batch_size=batch_size)
        self.mirror = mirror

    async def run(self) -> None:
        """Add each batch, pass its items on; with ``mirror``, then remove the rest.

        Raises:
            ValueError: a unit is not saved.
            StoreError: the version is not open, or the database failed.
        """
        if not self.mirror:
            await super().run()
            return
        # What the stream brought is recorded in the database batch by batch (not in a
        # set of every key), so memory does not grow with the repository.
        async with ProgressReport(ASSOCIATING_CONTENT_MESSAGE, ASSOCIATING_CONTENT_CODE) as added:
            async for batch in self.batches(self.batch_size):
                units = [d.content for d in batch]
                added.increase_by(await self.new_version.add_content(units))
                await self.new_version.mark_seen(units)
                for d in batch:
                    await self.put(d)
        async with ProgressReport(
            UNASSOCIATING_CONTENT_MESSAGE, UNASSOCIATING_CONTENT_CODE
        ) as removed:
            removed.increase_by(await self.new_version.remove_unseen())


class ContentUnassociation(Stage):
    """Removes the units that flow through it from the new version, as in the asyncio era.

    Note the difference: ``stageline.stages.ContentUnassociation`` removes what the stream
    did NOT bring (stageline's mirror mode); this one removes what it does bring, batch by
    batch, and passes every item on. Progress: "Un-Associating Content", counting the
    units asked to be removed.

    Args:
        new_version: the version being built.
        batch_size: items per store call.
    """

    def __init__(self, new_version: NewVersion, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.new_version = new_version
        self.batch_size = batch_size

    async def run(self) -> None:
        """Remove each batch's units from the new version, then pass the items on.

        Raises:
            StoreError: the version is not open, or the database failed.
        """
        async with ProgressReport(
            UNASSOCIATING_CONTENT_MESSAGE, UNASSOCIATING_CONTENT_CODE
        ) as removed:
            async for batch in self.batches(self.batch_size):
                await self.new_version.remove_content([d.content for d in batch])
                removed.increase_by(len(batch))
                for d in batch:
                    await self.put(d)


class ArtifactResourceBudget(Stage, native.ArtifactResourceBudget):
    """See :class:`stageline.stages.ArtifactResourceBudget` (hand-wirable here)."""


class ACSArtifactHandler(Stage, native.ACSArtifactHandler):
    """See :class:`stageline.stages.ACSArtifactHandler`; ``store`` and ``sources`` default
    to the sync's (its workspace's alternate sources).

    Hand it to the download stage (``ArtifactDownloader(acs=handler)``): the download
    stage tries the sources it found first.

    Args:
        store: where the sources' remote artifacts are; None: the running sync's.
        sources: the alternate content sources; None: the running sync's workspace's.
        batch_size: items per query.
    """

    def __init__(
        self,
        store: Store | None = None,
        sources: Iterable[AlternateContentSource] | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__(cast(Store, store), sources or (), batch_size=batch_size)
        self._given = (store, sources)

    async def run(self) -> None:
        """See the native stage.

        Raises:
            StageConfigurationError: made without a store, outside a shimmed sync.
            StoreError: the database failed.
        """
        store, sources = self._given
        self.store = _store_of(self, store)
        if sources is None:
            self.sources = running_sync(self, "sources").workspace.alternate_sources
        await super().run()
