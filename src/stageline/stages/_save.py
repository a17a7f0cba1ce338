"""The saving stages: artifact files into storage and rows, then content and its files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from .._declarative import DeclarativeArtifact, DeclarativeContent, note_saved_file
from .._stage import Stage
from ..models import Artifact, Content
from ..storage import ArtifactStorage
from ..store import Store, UnitOfWork
from ._query import DEFAULT_BATCH_SIZE, check_batch_size

if TYPE_CHECKING:
    from ._budget import ArtifactResourceBudget

__all__ = ["ArtifactSaver", "ContentSaver"]


class ArtifactSaver(Stage):
    """Stores downloaded files and saves their artifacts, in bulk per batch.

    Every declared artifact that is unsaved and has a file (downloaded, or given by the
    first stage) is put into the storage (moved from the temporary area, copied
    otherwise) and saved in one store call per batch; ``d_artifact.artifact`` then is
    the saved artifact. An artifact whose sha256 is saved already (by an earlier or a
    concurrent sync) becomes that saved artifact. Other declared artifacts (saved,
    deferred, or never downloaded) pass untouched.

    With a ``budget`` (the :class:`ArtifactResourceBudget` before the downloader), the
    stage saves its pending batch at once while the budget waits for room, releases
    each batch once it is saved, and releases everything when it ends (normally, the
    units still held are those a stage before it left out; on a failure or a
    cancellation, none will be saved).

    Args:
        store: where artifacts are saved.
        storage: where their files go.
        batch_size: items per store call.
        budget: the budget to flush for and release, if any.

    Raises:
        StageConfigurationError: (a ``ValueError``) ``batch_size`` < 1.
    """

    def __init__(
        self,
        store: Store,
        storage: ArtifactStorage,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        budget: ArtifactResourceBudget | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.batch_size = check_batch_size(batch_size)
        self.budget = budget

    async def run(self) -> None:
        """Store and save each batch's files, then pass its items on in order.

        Raises:
            ValueError: an artifact with a file has no sha256.
            StorageError: a file could not be stored.
            StoreError: the database failed.
        """
        budget = self.budget
        try:
            flush_event = None if budget is None else budget.flush_event
            async for batch in self.batches(self.batch_size, flush_event):
                declared = [
                    da
                    for d in batch
                    for da in d.d_artifacts
                    if not da.artifact.saved and da.artifact.file is not None
                ]
                if declared:
                    await self._save(declared)
                if budget is not None:
                    budget.release(batch)
                await self.put_all(batch)
        finally:
            if budget is not None:
                budget.release_all()

    async def _save(self, declared: list[DeclarativeArtifact]) -> None:
        # A file declared twice (one download shared by two units) is stored once.
        unique: dict[int, Artifact] = {id(da.artifact): da.artifact for da in declared}
        artifacts = list(unique.values())
        await self.storage.store(artifacts)
        saved = await self.store.save_artifacts(artifacts)
        replacement = {id(a): s for a, s in zip(artifacts, saved, strict=True)}
        for da in declared:
            da.artifact = replacement[id(da.artifact)]


class ContentSaver(Stage):
    """Saves new content and its content artifacts, one batch at a time.

    For each batch: units not saved yet are saved with a content artifact per declared
    artifact (its saved artifact, or none while the file is deferred); the store writes
    their rows in natural-key order, so that concurrent PostgreSQL writers take their
    locks in the same order. A saved unit whose content artifact has no artifact yet
    (first synced on demand) gets the declared artifact, once that one is saved (a
    later immediate sync). Then every item is passed on, in order, its ``content`` the
    saved unit.

    Each batch is saved in one database transaction, and so are the hooks around it: if
    a hook or the save fails, or the sync is cancelled before the commit, nothing of the
    batch is written. It is a unit of work when a hook is overridden or a saved unit may
    get a file; otherwise the batch's new units are saved by one store call, which
    commits in the worker thread that wrote them (a unit of work would hold SQLite's
    write lock until the event loop got round to its commit). A batch with nothing to
    write (every unit saved, no declared file saved) opens no transaction, unless a hook
    is overridden: hooks run for every batch.

    Subclass it to save more with each batch: override :meth:`_pre_save` and
    :meth:`_post_save`, which run around the batch's save, inside its transaction. While
    they run, :attr:`unit_of_work` is the open :class:`~stageline.store.UnitOfWork`:
    write through it (``await self.unit_of_work.run_sync(fn)`` for a plugin's own
    tables), not through the store, whose own writes wait for this transaction.

    Args:
        store: where the content is saved.
        batch_size: items per batch.

    Raises:
        StageConfigurationError: (a ``ValueError``) ``batch_size`` < 1.
    """

    def __init__(self, store: Store, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.store = store
        self.batch_size = check_batch_size(batch_size)
        #: The batch's open unit of work while it is being saved (hooks included), else None.
        self.unit_of_work: UnitOfWork | None = None

    async def run(self) -> None:
        """Save each batch, then pass its items on in order.

        Raises:
            ContentTypeError: a unit's class is not a declared content type.
            StoreError: the database failed.
            Exception: what a hook raised.
        """
        async for batch in self.batches(self.batch_size):
            await self._save_batch(batch)
            await self.put_all(batch)

    async def _pre_save(self, batch: list[DeclarativeContent]) -> None:
        """Extension point: runs before the batch is saved. Does nothing by default.

        Args:
            batch: the batch, in stream order; new units are not saved yet.
        """

    async def _post_save(self, batch: list[DeclarativeContent]) -> None:
        """Extension point: runs once the batch is saved. Does nothing by default.

        Args:
            batch: the batch, in stream order; every ``d.content`` is the saved unit.
        """

    async def _save_batch(self, batch: list[DeclarativeContent]) -> None:
        # One pass over the batch (every unit of a re-sync is saved already): the new
        # units, the saved ones, and whether a saved one declares a saved file.
        new: list[DeclarativeContent] = []
        existing: list[DeclarativeContent] = []
        fill = False
        for d in batch:
            if d.content.saved:
                existing.append(d)
                fill = fill or _declares_saved_file(d)
            else:
                new.append(d)
        if not fill and not self._hooked():
            # At most new units to save (none in most batches of a re-sync): one store
            # call, itself one transaction, which commits in the worker thread that wrote
            # the rows; a unit of work would hold SQLite's write lock until the event
            # loop got round to its commit.
            await self._save_new(self.store, new)
            return
        async with self._unit_of_work() as writes:
            await self._pre_save(batch)
            await self._save_new(writes, new)
            await self._fill_deferred(writes, existing)
            await self._post_save(batch)

    @staticmethod
    async def _save_new(writes: Store | UnitOfWork, new: list[DeclarativeContent]) -> None:
        """Save the new units with their files; note each file's content artifact."""
        if not new:
            return
        files = [
            (d.content, da.relative_path, da.artifact if da.artifact.saved else None)
            for d in new
            for da in d.d_artifacts
        ]
        saved, pks = await writes.save_content_by_path([d.content for d in new], files)
        for d, unit in zip(new, saved, strict=True):
            d.content = unit
        # Which content artifact each declared file is, for RemoteArtifactSaver.
        file_pks = iter(pks)
        for d in new:
            content_pk = d.content.pk
            assert content_pk is not None
            for da in d.d_artifacts:
                note_saved_file(da, content_pk, next(file_pks))

    def _hooked(self) -> bool:
        """Whether a subclass overrides :meth:`_pre_save` or :meth:`_post_save`."""
        cls = type(self)
        return cls._pre_save is not ContentSaver._pre_save or (
            cls._post_save is not ContentSaver._post_save
        )

    @asynccontextmanager
    async def _unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """One transaction for the batch and its hooks, open as :attr:`unit_of_work`."""
        async with self.store.unit_of_work() as unit_of_work:
            self.unit_of_work = unit_of_work
            try:
                yield unit_of_work
            finally:
                self.unit_of_work = None

    @staticmethod
    async def _fill_deferred(writes: UnitOfWork, existing: list[DeclarativeContent]) -> None:
        """Give saved units' artifact-less content artifacts the now saved declared files."""
        candidates = [d for d in existing if _declares_saved_file(d)]
        if not candidates:
            return
        found = await writes.find_content_artifacts(_unique_units(candidates))
        declared: dict[tuple[int | None, str], Artifact] = {
            (d.content.pk, da.relative_path): da.artifact
            for d in candidates
            for da in d.d_artifacts
            if da.artifact.saved
        }
        fill = []
        for ca in found:
            artifact = declared.get((ca.content.pk, ca.relative_path))
            if ca.artifact is None and artifact is not None:
                ca.artifact = artifact
                fill.append(ca)
        if fill:
            await writes.update_content_artifacts(fill)


def _declares_saved_file(d: DeclarativeContent) -> bool:
    """Whether the item declares a saved file: for a saved unit, its content artifact may
    still lack it (first synced on demand)."""
    # A loop rather than any() over a generator: it runs for every unit of a re-sync.
    for da in d.d_artifacts:  # noqa: SIM110 (see above)
        if da.artifact.saved:
            return True
    return False


def _unique_units(items: list[DeclarativeContent]) -> list[Content]:
    units: dict[int | None, Content] = {d.content.pk: d.content for d in items}
    return list(units.values())
