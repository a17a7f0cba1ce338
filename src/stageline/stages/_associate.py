"""The last stages: resolve each item, then put the saved content into the new version."""

from __future__ import annotations

from .._stage import Stage
from ..progress import (
    ASSOCIATING_CONTENT_CODE,
    ASSOCIATING_CONTENT_MESSAGE,
    UNASSOCIATING_CONTENT_CODE,
    UNASSOCIATING_CONTENT_MESSAGE,
    ProgressReport,
)
from ..store import NewVersion
from ._query import DEFAULT_BATCH_SIZE, check_batch_size

__all__ = ["ContentAssociation", "ContentUnassociation", "ResolveContentFutures"]


class ResolveContentFutures(Stage):
    """Resolves every item (its waiters get the saved unit) and passes it on."""

    async def run(self) -> None:
        """Resolve and pass on each item, in order."""
        async for d in self.items():
            d.resolve()
            await self.put(d)


class ContentAssociation(Stage):
    """Adds each batch's saved content to the new version, then passes the items on.

    A unit already in the version stays as it is; one with the same repository key as
    a unit in the version replaces it (the later of two in one sync wins).

    Progress: an "Associating Content" report (``ASSOCIATING_CONTENT_CODE``) counts the
    units added, those that were not in the version already.

    Args:
        new_version: the version being built (:meth:`~stageline.store.Store.new_version`).
        batch_size: items per store call.

    Raises:
        StageConfigurationError: (a ``ValueError``) ``batch_size`` < 1.
    """

    def __init__(self, new_version: NewVersion, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.new_version = new_version
        self.batch_size = check_batch_size(batch_size)

    async def run(self) -> None:
        """Add each batch, then pass its items on in order.

        Raises:
            ValueError: a unit is not saved (``ContentSaver`` must come before).
            StoreError: the version is not open, or the database failed.
        """
        async with ProgressReport(ASSOCIATING_CONTENT_MESSAGE, ASSOCIATING_CONTENT_CODE) as report:
            async for batch in self.batches(self.batch_size):
                report.increase_by(await self.new_version.add_content([d.content for d in batch]))
                await self.put_all(batch)


class ContentUnassociation(Stage):
    """Mirror mode: removes from the new version every unit the stream did not bring.

    Put it after :class:`ContentAssociation`. It passes every item on, recording its
    saved unit in the database batch by batch (:meth:`NewVersion.mark_seen
    <stageline.store.NewVersion.mark_seen>`), and once its input has ended removes the
    rest of the version's content with one database pass
    (:meth:`~stageline.store.NewVersion.remove_unseen`). A unit the sync skipped (its
    download failed) is not in the stream, so the unit it would have replaced is removed
    as well.

    Memory: one batch. What was seen is kept in the database, not here, so the stage's
    memory does not grow with the repository.

    Progress: an "Un-Associating Content" report (``UNASSOCIATING_CONTENT_CODE``) counts
    the units removed; it runs for the whole stage and counts them at the end.

    Args:
        new_version: the version being built.
        batch_size: items per store call.

    Raises:
        StageConfigurationError: (a ``ValueError``) ``batch_size`` < 1.
    """

    def __init__(self, new_version: NewVersion, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.new_version = new_version
        self.batch_size = check_batch_size(batch_size)

    async def run(self) -> None:
        """Record each batch as seen and pass its items on, then remove what was not seen.

        Raises:
            StoreError: the version is not open, or the database failed.
        """
        async with ProgressReport(
            UNASSOCIATING_CONTENT_MESSAGE, UNASSOCIATING_CONTENT_CODE
        ) as report:
            async for batch in self.batches(self.batch_size):
                await self.new_version.mark_seen(
                    [pk for d in batch if (pk := d.content.pk) is not None]
                )
                await self.put_all(batch)
            report.increase_by(await self.new_version.remove_unseen())
