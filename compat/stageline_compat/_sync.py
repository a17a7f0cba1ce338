"""The asyncio era's ``DeclarativeVersion``: ``pipeline_stages`` without the association."""

from __future__ import annotations

from typing import Any

import stageline
from stageline.download import DownloaderFactory
from stageline.models import Repository, RepositoryVersion
from stageline.stages import DownloadFailurePolicy, SkippedUnit
from stageline.storage import ArtifactStorage
from stageline.store import NewVersion, Store

from ._context import sync_context
from ._stage import require_asyncio
from ._stages import (
    ACSArtifactHandler,
    ArtifactDownloader,
    ArtifactResourceBudget,
    ArtifactSaver,
    ContentAssociation,
    ContentSaver,
    QueryExistingArtifacts,
    QueryExistingContents,
    RemoteArtifactSaver,
    ResolveContentFutures,
)

__all__ = ["DeclarativeVersion"]


class _Sync(stageline.DeclarativeVersion):
    """The native sync behind a shimmed ``DeclarativeVersion``; its pipeline is the shim's."""

    def __init__(self, owner: DeclarativeVersion, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner

    def pipeline_stages(self, new_version: NewVersion) -> list[stageline.Stage]:
        stages = list(self.owner.pipeline_stages(new_version))
        stages.append(ContentAssociation(new_version, self.mirror, batch_size=self.batch_size))
        return stages

    async def acreate(self) -> RepositoryVersion | None:
        # Set for the whole sync: every stage task inherits it (see _context).
        token = sync_context.set(self)
        try:
            return await super().acreate()
        finally:
            sync_context.reset(token)


class DeclarativeVersion:
    """A sync with the asyncio era's pipeline: ``DeclarativeVersion(first_stage, repository,
    mirror=False, acs=False).create()``.

    Subclass it and override :meth:`pipeline_stages`, which returns the stages from the
    first stage to :class:`ResolveContentFutures`; the sync appends
    ``ContentAssociation(new_version, mirror)`` itself, as the asyncio era did. Stages made
    there without arguments (``ContentSaver()``) use the sync's store, storage and
    downloader factory.

    It runs on :class:`stageline.DeclarativeVersion` (stageline's sync), which documents
    the keyword options (``workspace``, ``on_error``, ``batch_size``, ``reporters``, …);
    they are passed on unchanged.

    Args:
        first_stage: the plugin's first stage.
        repository: the repository to sync into.
        mirror: True to make the new version hold exactly what the sync brought.
        acs: True to fetch from the workspace's alternate content sources first.
        **options: stageline's keyword options.

    Raises:
        StageConfigurationError: (a ``ValueError``) see :class:`stageline.DeclarativeVersion`.
    """

    def __init__(
        self,
        first_stage: stageline.Stage,
        repository: Repository,
        mirror: bool = False,
        acs: bool = False,
        **options: Any,
    ) -> None:
        self.first_stage = first_stage
        self.repository = repository
        self.mirror = mirror
        self.acs = acs
        self._sync = _Sync(self, first_stage, repository, mirror, acs, **options)
        self._budget: ArtifactResourceBudget | None = None

    # -- what pipeline_stages may use (while the sync runs) ------------------------------

    @property
    def sync(self) -> stageline.DeclarativeVersion:
        """The stageline sync this runs on (its options: ``batch_size``, ``workspace``, …)."""
        return self._sync

    @property
    def store(self) -> Store:
        """The sync's open store (while it runs).

        Raises:
            PipelineError: no sync is running.
        """
        return self._sync.store

    @property
    def storage(self) -> ArtifactStorage:
        """The workspace's artifact storage."""
        return self._sync.storage

    @property
    def downloader_factory(self) -> DownloaderFactory:
        """The sync's open downloader factory (while it runs).

        Raises:
            PipelineError: no sync is running.
        """
        return self._sync.downloader_factory

    @property
    def failure_policy(self) -> DownloadFailurePolicy:
        """The failure policy of the current (or last) sync."""
        return self._sync.failure_policy

    @property
    def budget(self) -> ArtifactResourceBudget | None:
        """The budget of the current (or last) sync's default pipeline; None without a cap."""
        return self._budget

    @property
    def skipped(self) -> list[SkippedUnit]:
        """The units the last sync left out because their download failed (``on_error``)."""
        return self._sync.skipped

    def pipeline_stages(self, new_version: NewVersion) -> list[stageline.Stage]:
        """The stages from the first stage to ``ResolveContentFutures``, in order.

        Override it to change the pipeline; the sync appends the association stage. The
        default: the first stage, ``QueryExistingContents``, ``QueryExistingArtifacts``,
        (with ``acs``) ``ACSArtifactHandler``, (with ``max_pending_bytes`` or
        ``max_pending_items``) ``ArtifactResourceBudget``, ``ArtifactDownloader``,
        ``ArtifactSaver``, ``ContentSaver``, ``RemoteArtifactSaver``,
        ``ResolveContentFutures`` (this package's classes).

        Args:
            new_version: the version being built.

        Returns:
            The stages, first to last.
        """
        sync = self._sync
        batch_size = sync.batch_size
        acs = ACSArtifactHandler(batch_size=batch_size) if self.acs else None
        budget = self._budget = (
            None
            if sync.max_pending_bytes is None and sync.max_pending_items is None
            else ArtifactResourceBudget(
                max_bytes=sync.max_pending_bytes, max_items=sync.max_pending_items
            )
        )
        return [
            self.first_stage,
            QueryExistingContents(batch_size=batch_size),
            QueryExistingArtifacts(batch_size=batch_size),
            *([acs] if acs is not None else []),
            *([budget] if budget is not None else []),
            ArtifactDownloader(sync.max_concurrent_content, budget=budget, acs=acs),
            ArtifactSaver(batch_size=batch_size, budget=budget),
            ContentSaver(batch_size=batch_size),
            RemoteArtifactSaver(batch_size=batch_size),
            ResolveContentFutures(),
        ]

    def create(self) -> RepositoryVersion | None:
        """Run the sync from synchronous code, on a new asyncio event loop.

        Returns:
            The new repository version, or None when the sync changed nothing.

        Raises:
            PipelineError: called inside a running event loop (``await acreate()`` there).
            Exception: what :meth:`stageline.DeclarativeVersion.acreate` raises.
        """
        return self._sync.create(backend="asyncio")

    async def acreate(self) -> RepositoryVersion | None:
        """Run the sync inside the running asyncio event loop.

        Returns:
            The new repository version, or None when the sync changed nothing.

        Raises:
            UsageError: (a ``RuntimeError``) not under asyncio.
            Exception: what :meth:`stageline.DeclarativeVersion.acreate` raises.
        """
        require_asyncio("DeclarativeVersion.acreate()")
        return await self._sync.acreate()
