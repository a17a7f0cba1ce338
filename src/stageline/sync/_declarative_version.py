"""``DeclarativeVersion``: run a whole sync, from a first stage to a new repository version."""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from typing import Final, Literal

import anyio

from .._exceptions import PipelineError, StageConfigurationError
from .._pipeline import DEFAULT_MAXSIZE, create_pipeline
from .._stage import Stage
from ..download import DownloaderFactory
from ..models import Repository, RepositoryVersion
from ..progress import ProgressReporter, reporting_to
from ..stages import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENT_CONTENT,
    ACSArtifactHandler,
    ArtifactDownloader,
    ArtifactResourceBudget,
    ArtifactSaver,
    ContentAssociation,
    ContentSaver,
    ContentUnassociation,
    DownloadFailurePolicy,
    OnError,
    QueryExistingArtifacts,
    QueryExistingContents,
    RemoteArtifactSaver,
    ResolveContentFutures,
    SkippedUnit,
)
from ..storage import ArtifactStorage
from ..store import NewVersion, Store
from ._collector import collector_tuned
from ._waiting import enter_new_version
from ._workspace import Workspace

__all__ = ["DEFAULT_LOCK_TIMEOUT", "Backend", "DeclarativeVersion"]

#: Seconds a sync waits for another sync of the same repository to finish.
DEFAULT_LOCK_TIMEOUT: Final = 3600.0

#: The event loops ``create()`` can run a sync on.
Backend = Literal["asyncio", "trio"]


class _Running:
    """What a sync has open while it runs."""

    __slots__ = ("downloader_factory", "store")

    def __init__(self, store: Store, downloader_factory: DownloaderFactory) -> None:
        self.store = store
        self.downloader_factory = downloader_factory


class DeclarativeVersion:
    """A sync: runs a first stage and the default stages into a new repository version.

    The first stage declares what the upstream has (``DeclarativeContent`` items); the
    default stages look up what is saved, download what is missing, save it, and put it
    into a new version of ``repository``::

        version = DeclarativeVersion(MyFirstStage(remote), Repository(name="x")).create()

    ``create()`` runs it from synchronous code, ``await acreate()`` from inside a running
    asyncio or Trio event loop. Either returns the new version, or None when nothing
    changed. On an error or a cancellation no version is left behind and no temporary
    file remains. The repository is created when the store has none of that name. A
    second sync of the same repository waits for the first (up to ``lock_timeout``).

    Subclass it and override :meth:`pipeline_stages` to change the pipeline.

    Args:
        first_stage: the plugin's first stage.
        repository: the repository to sync into (saved, or found or created by name).
        mirror: True to remove from the new version every unit the sync did not bring;
            False (additive) keeps them.
        acs: True to fetch the files the workspace's alternate content sources have
            from there first (``Workspace(alternate_sources=[...])``; see
            :class:`~stageline.stages.AlternateContentSource`).
        workspace: the store, storage and download settings; the default is
            :class:`Workspace()`, stageline's home folder.
        on_error: ``"fail"`` (the default): the first failed download fails the sync;
            ``"skip"``: a unit whose file cannot be fetched is left out and reported in
            :attr:`skipped`.
        max_skipped: with ``on_error="skip"``, fail the sync once more units than this
            failed (None: no cap).
        max_concurrent_content: at most this many units downloading at once.
        batch_size: items per database round trip in the batching stages.
        maxsize: the buffer between two stages.
        lock_timeout: seconds to wait for another sync of the repository (None: no limit).
        max_pending_bytes: cap the declared bytes of the files downloaded but not saved
            yet (None: no cap); see :class:`~stageline.stages.ArtifactResourceBudget`.
        max_pending_items: cap the units whose files are downloaded but not saved yet.
        reporters: where the sync's progress reports go (the default stages report
            "Downloading Artifacts", "Associating Content" and "Un-Associating Content";
            see ``docs/progress.md``), beside those already installed around the call
            with :func:`~stageline.progress.reporting_to`.

    Raises:
        StageConfigurationError: (a ``ValueError``) an argument is out of range, or
            ``acs`` is True and the workspace has no alternate content source.
    """

    def __init__(
        self,
        first_stage: Stage,
        repository: Repository,
        mirror: bool = False,
        acs: bool = False,
        *,
        workspace: Workspace | None = None,
        on_error: OnError = "fail",
        max_skipped: int | None = None,
        max_concurrent_content: int = DEFAULT_MAX_CONCURRENT_CONTENT,
        batch_size: int = DEFAULT_BATCH_SIZE,
        maxsize: int = DEFAULT_MAXSIZE,
        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        reporters: Iterable[ProgressReporter] = (),
        max_pending_bytes: int | None = None,
        max_pending_items: int | None = None,
    ) -> None:
        if not isinstance(first_stage, Stage):
            raise StageConfigurationError(
                f"DeclarativeVersion: first_stage must be a Stage instance, got {first_stage!r}"
            )
        if not isinstance(repository, Repository):
            raise StageConfigurationError(
                f"DeclarativeVersion: repository must be a Repository, got {repository!r}; "
                "use Repository(name=...)"
            )
        if lock_timeout is not None and (
            isinstance(lock_timeout, bool)
            or not isinstance(lock_timeout, int | float)
            or not lock_timeout >= 0
        ):
            raise StageConfigurationError(
                f"lock_timeout must be None or a number >= 0, got {lock_timeout!r}"
            )
        self.reporters = tuple(reporters)
        for reporter in self.reporters:
            if not isinstance(reporter, ProgressReporter):
                raise StageConfigurationError(
                    f"DeclarativeVersion: reporters must have started(), updated() and "
                    f"finished() methods (see stageline.progress.ProgressReporter), got "
                    f"{reporter!r}"
                )
        self.first_stage = first_stage
        self.repository = repository
        self.mirror = mirror
        self.workspace = workspace if workspace is not None else Workspace()
        if acs and not self.workspace.alternate_sources:
            raise StageConfigurationError(
                "DeclarativeVersion(acs=True): the workspace has no alternate content "
                "source; give it some, Workspace(..., alternate_sources=["
                "AlternateContentSource(remote)]), or leave acs False"
            )
        self.acs = acs
        # Checked here, so that a wrong value fails at once rather than when syncing.
        self._policy = DownloadFailurePolicy(on_error, max_skipped=max_skipped)
        self.on_error: OnError = on_error
        self.max_skipped = max_skipped
        self.max_concurrent_content = _int_at_least(
            1, "max_concurrent_content", max_concurrent_content
        )
        self.batch_size = _int_at_least(1, "batch_size", batch_size)
        self.maxsize = _int_at_least(0, "maxsize", maxsize)
        self.lock_timeout = lock_timeout
        # Checked here (by making one), so that a wrong limit fails at once.
        ArtifactResourceBudget(max_bytes=max_pending_bytes, max_items=max_pending_items)
        self.max_pending_bytes = max_pending_bytes
        self.max_pending_items = max_pending_items
        self._budget: ArtifactResourceBudget | None = None
        self._running: _Running | None = None
        # Set for the whole of acreate(), from before the store is opened.
        self._active = False

    # -- what pipeline_stages may use ----------------------------------------------------

    @property
    def store(self) -> Store:
        """The sync's open store (while :meth:`acreate` runs).

        Raises:
            PipelineError: no sync is running.
        """
        return self._current().store

    @property
    def storage(self) -> ArtifactStorage:
        """The workspace's artifact storage."""
        return self.workspace.storage

    @property
    def downloader_factory(self) -> DownloaderFactory:
        """The sync's open downloader factory (while :meth:`acreate` runs).

        Raises:
            PipelineError: no sync is running.
        """
        return self._current().downloader_factory

    @property
    def failure_policy(self) -> DownloadFailurePolicy:
        """The failure policy of the current (or last) sync; give it to download stages."""
        return self._policy

    @property
    def budget(self) -> ArtifactResourceBudget | None:
        """The budget of the current (or last) sync's pipeline; None without a cap.

        Its ``peak_bytes`` and ``peak_items`` tell how close a sync came to the caps.
        """
        return self._budget

    @property
    def skipped(self) -> list[SkippedUnit]:
        """The units the last sync left out because their download failed (``"skip"``).

        Each has the unit, the urls its files were to come from, and the error. Empty
        with ``on_error="fail"``.
        """
        return self._policy.skipped

    def _current(self) -> _Running:
        if self._running is None:
            raise PipelineError(
                "DeclarativeVersion.store and .downloader_factory exist only while the sync "
                "runs (in pipeline_stages and the stages it makes)"
            )
        return self._running

    # -- the pipeline -------------------------------------------------------------------

    def pipeline_stages(self, new_version: NewVersion) -> list[Stage]:
        """The stages of the sync, first stage included, in the order they run.

        Override it to add, replace, reorder or drop stages; ``self.store``,
        ``self.storage``, ``self.downloader_factory`` and ``self.failure_policy`` are the
        sync's. The default is the first stage, then
        :class:`~stageline.stages.QueryExistingContents`,
        :class:`~stageline.stages.QueryExistingArtifacts`, (with ``acs=True``) an
        :class:`~stageline.stages.ACSArtifactHandler` handed to the downloader, (with
        ``max_pending_bytes`` or ``max_pending_items``) an
        :class:`~stageline.stages.ArtifactResourceBudget`, also handed to the downloader
        and the artifact saver (and kept as :attr:`budget`),
        :class:`~stageline.stages.ArtifactDownloader`,
        :class:`~stageline.stages.ArtifactSaver`,
        :class:`~stageline.stages.ContentSaver`,
        :class:`~stageline.stages.RemoteArtifactSaver`,
        :class:`~stageline.stages.ResolveContentFutures`,
        :class:`~stageline.stages.ContentAssociation`, and in mirror mode
        :class:`~stageline.stages.ContentUnassociation`.

        Args:
            new_version: the version being built.

        Returns:
            The stages, first to last.
        """
        store, batch_size = self.store, self.batch_size
        budget = self._budget = self._new_budget()
        acs = (
            ACSArtifactHandler(store, self.workspace.alternate_sources, batch_size=batch_size)
            if self.acs
            else None
        )
        stages: list[Stage] = [
            self.first_stage,
            QueryExistingContents(store, batch_size=batch_size),
            QueryExistingArtifacts(
                store,
                batch_size=batch_size,
                allowed_digests=self.downloader_factory.allowed_digests,
            ),
            *([acs] if acs is not None else []),
            *([budget] if budget is not None else []),
            ArtifactDownloader(
                self.downloader_factory,
                self.max_concurrent_content,
                failure_policy=self.failure_policy,
                budget=budget,
                acs=acs,
            ),
            ArtifactSaver(store, self.storage, batch_size=batch_size, budget=budget),
            ContentSaver(store, batch_size=batch_size),
            RemoteArtifactSaver(store, batch_size=batch_size),
            ResolveContentFutures(),
            ContentAssociation(new_version, batch_size=batch_size),
        ]
        if self.mirror:
            stages.append(ContentUnassociation(new_version, batch_size=batch_size))
        return stages

    def _new_budget(self) -> ArtifactResourceBudget | None:
        if self.max_pending_bytes is None and self.max_pending_items is None:
            return None
        return ArtifactResourceBudget(
            max_bytes=self.max_pending_bytes, max_items=self.max_pending_items
        )

    # -- running ------------------------------------------------------------------------

    def create(self, *, backend: Backend = "asyncio") -> RepositoryVersion | None:
        """Run the sync from synchronous code, on a new event loop.

        Args:
            backend: ``"asyncio"`` or ``"trio"``.

        Returns:
            The new repository version, or None when the sync changed nothing.

        Raises:
            StageConfigurationError: (a ``ValueError``) ``backend`` is not one of the two.
            PipelineError: called from inside a running event loop (``await acreate()``
                there), or while this sync runs already.
            Exception: what :meth:`acreate` raises.
        """
        if backend not in ("asyncio", "trio"):
            raise StageConfigurationError(f"backend must be 'asyncio' or 'trio', got {backend!r}")
        running = _running_event_loop()
        if running is not None:
            raise PipelineError(
                f"DeclarativeVersion.create() was called inside a running {running} event "
                "loop; use `await dv.acreate()` there"
            )
        return _run_new_loop(self.acreate, backend)

    async def acreate(self) -> RepositoryVersion | None:
        """Run the sync inside the running event loop (asyncio or Trio).

        Returns:
            The new repository version, or None when the sync changed nothing.

        Raises:
            DownloadError: a download failed (and the failure policy did not skip it).
            RepositoryBusyError: another sync of the repository ran for longer than
                ``lock_timeout``.
            SyncError: the first stage's declarations contradict saved content.
            StoreError: the database failed.
            StorageError: a file could not be stored.
            PipelineError: this sync is running already.
            Exception: what a stage raised.
        """
        if self._active:
            raise PipelineError(
                "this DeclarativeVersion is running already; make another one to sync at "
                "the same time"
            )
        self._active = True
        try:
            with reporting_to(*self.reporters), collector_tuned():
                return await self._sync()
        finally:
            self._active = False

    async def _sync(self) -> RepositoryVersion | None:
        self._policy = DownloadFailurePolicy(self.on_error, max_skipped=self.max_skipped)
        async with self.workspace.open_store() as store:
            repository = self.repository
            if repository.pk is None:
                repository = await store.create_repository(repository, exist_ok=True)
            async with AsyncExitStack() as stack:
                new_version = await enter_new_version(
                    stack, store, repository, lock_timeout=self.lock_timeout
                )
                await stack.enter_async_context(self.storage.temporary_area())
                factory = await stack.enter_async_context(self.workspace.downloader_factory())
                self._running = _Running(store, factory)
                try:
                    await create_pipeline(self.pipeline_stages(new_version), maxsize=self.maxsize)
                finally:
                    self._running = None
            return new_version.result


def _int_at_least(minimum: int, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise StageConfigurationError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _run_new_loop(
    fn: Callable[[], Awaitable[RepositoryVersion | None]], backend: Backend
) -> RepositoryVersion | None:
    """``anyio.run(fn)`` in a copy of the caller's context that names no async library.

    No event loop runs in this thread (the caller checked), but a thread started from
    one by ``asyncio.to_thread`` or ``run_in_executor`` copies the loop's context, and
    with it sniffio's variable that anyio set to the running library; ``anyio.run``
    would read it and refuse with "Already running asyncio in this thread".
    """

    def run() -> RepositoryVersion | None:
        sniffio = sys.modules.get("sniffio")
        if sniffio is not None:
            sniffio.current_async_library_cvar.set(None)
        return anyio.run(fn, backend=backend)

    return contextvars.copy_context().run(run)


def _running_event_loop() -> str | None:
    """The event loop running in this thread: "asyncio", "trio", or None."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass
        else:
            return "trio"
    return None
