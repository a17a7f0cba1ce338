"""``ArtifactResourceBudget``: bound what a sync holds downloaded but not yet saved."""

from __future__ import annotations

from collections.abc import Iterable

import anyio

from .._declarative import DeclarativeContent
from .._exceptions import StageConfigurationError
from .._stage import FlushEvent, Stage
from ._download import needs_download

__all__ = ["ArtifactResourceBudget"]


class _Pressure:
    """The flush event a budget raises while it waits for room; it can be lowered again.

    ``anyio.Event`` cannot be cleared, and ``batches(flush_event=...)`` needs only
    ``is_set()`` and ``async wait()``: a fresh ``anyio.Event`` per raise gives both, on
    asyncio and Trio alike.
    """

    __slots__ = ("_event", "_raised")

    def __init__(self) -> None:
        self._raised = False
        self._event = anyio.Event()

    def is_set(self) -> bool:
        return self._raised

    async def wait(self) -> None:
        if not self._raised:
            await self._event.wait()

    def raise_(self) -> None:
        if not self._raised:
            self._raised = True
            self._event.set()

    def lower(self) -> None:
        if self._raised:
            self._raised = False
            self._event = anyio.Event()


def _limit(name: str, value: object) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise StageConfigurationError(
            f"ArtifactResourceBudget: {name} must be None or an int >= 1, got {value!r}"
        )
    return value


class ArtifactResourceBudget(Stage):
    """Caps the bytes and the units a sync holds downloaded but not yet saved.

    Downloads outrun the database: without a cap, the files of every unit between the
    downloader and :class:`ArtifactSaver` (the buffers, the downloader's window, the
    saver's batch) wait in the temporary area at once, which for big files means a lot
    of disk. The budget lets a unit go on to the downloader only once its files fit: the
    declared sizes of the files it will download, added to those of the units let
    through and not released yet, stay within ``max_bytes``, and the units within
    ``max_items``. A unit with nothing to download (its files saved, deferred, or
    already at hand) passes without counting.

    - When nothing is held, a unit always passes, so one file larger than ``max_bytes``
      still syncs (alone). A file whose size the metadata does not give counts 0 bytes
      (it still counts as a unit).
    - While it waits, the budget raises :attr:`flush_event`; :class:`ArtifactSaver`
      watches it and saves its pending batch at once instead of waiting for it to fill,
      so a small budget never waits for a batch that cannot fill.
    - A unit releases exactly what it acquired: :class:`ArtifactSaver` releases each
      batch once its files are stored and saved; a download stage releases a unit its
      failure policy leaves out; when the sync fails or is cancelled, this stage and
      the saver release everything, so the budget ends at zero in every case.

    Put it after the query stages (and :class:`ACSArtifactHandler`), just before the
    download stage, and give the same budget to that stage (``budget=``) and to
    :class:`ArtifactSaver` (``budget=``). :class:`~stageline.DeclarativeVersion` does all
    this when given ``max_pending_bytes`` or ``max_pending_items``. A stage placed
    between the budget and the saver that drops a unit must call ``release([d])``.

    Args:
        max_bytes: at most this many declared bytes held at once (None: no cap).
        max_items: at most this many units held at once (None: no cap).

    Attributes:
        peak_bytes: the most bytes held at once so far (checked at every acquire).
        peak_items: the most units held at once so far.

    Raises:
        StageConfigurationError: (a ``ValueError``) a limit is not None or an int >= 1.
    """

    def __init__(self, *, max_bytes: int | None = None, max_items: int | None = None) -> None:
        self.max_bytes = _limit("max_bytes", max_bytes)
        self.max_items = _limit("max_items", max_items)
        self.peak_bytes = 0
        self.peak_items = 0
        self._held: dict[int, tuple[DeclarativeContent, int]] = {}
        self._bytes = 0
        self._pressure = _Pressure()
        self._freed: anyio.Event | None = None
        # Set by release_all (the sync ended): a unit let through after that is not
        # counted, since nothing downstream is left to release it.
        self._ended = False

    def __repr__(self) -> str:
        return (
            f"ArtifactResourceBudget(max_bytes={self.max_bytes!r}, max_items={self.max_items!r}, "
            f"pending_bytes={self._bytes}, pending_items={len(self._held)})"
        )

    @property
    def pending_bytes(self) -> int:
        """The declared bytes of the units let through and not released yet."""
        return self._bytes

    @property
    def pending_items(self) -> int:
        """The units let through and not released yet."""
        return len(self._held)

    @property
    def flush_event(self) -> FlushEvent:
        """Set while the budget waits for room: give it to ``batches(flush_event=...)``."""
        return self._pressure

    async def run(self) -> None:
        """Let each unit through once its files fit, in order.

        Raises:
            PipelineError: the next stage ended without reading its input.
        """
        finished = False
        self._ended = False
        try:
            async for d in self.items():
                await self.acquire(d)
                await self.put(d)
            finished = True
        finally:
            if not finished:
                # The sync is failing or cancelled: nothing held will be saved now.
                self.release_all()

    async def acquire(self, d_content: DeclarativeContent) -> None:
        """Wait until the unit's files fit, then count them as held.

        A unit with nothing to download, or one already held, is not counted (again);
        neither is one let through after :meth:`release_all` (the sync is ending, and the
        saver that would release it is gone).

        Args:
            d_content: the unit about to be downloaded.
        """
        size = _size_to_download(d_content)
        if size is None or id(d_content) in self._held:
            return
        while self._held and not self._fits(size):
            self._pressure.raise_()
            self._freed = anyio.Event()
            await self._freed.wait()
        self._pressure.lower()
        if self._ended:
            return
        self._held[id(d_content)] = (d_content, size)
        self._bytes += size
        self.peak_bytes = max(self.peak_bytes, self._bytes)
        self.peak_items = max(self.peak_items, len(self._held))

    def release(self, items: Iterable[DeclarativeContent]) -> None:
        """Release what each of ``items`` acquired; units not held are ignored."""
        freed = False
        for d in items:
            held = self._held.pop(id(d), None)
            if held is not None:
                self._bytes -= held[1]
                freed = True
        if freed:
            self._wake()

    def release_all(self) -> None:
        """Release every unit held (the sync ended: nothing held is still on its way).

        Units let through after this are not counted, until this stage runs again.
        """
        self._ended = True
        if self._held:
            self._held.clear()
            self._bytes = 0
            self._wake()

    def _fits(self, size: int) -> bool:
        if self.max_items is not None and len(self._held) + 1 > self.max_items:
            return False
        return self.max_bytes is None or self._bytes + size <= self.max_bytes

    def _wake(self) -> None:
        if self._freed is not None:
            self._freed.set()
            self._freed = None


def _size_to_download(d_content: DeclarativeContent) -> int | None:
    """The declared bytes of the unit's files to download; None when there are none."""
    needed = [da.artifact.size or 0 for da in d_content.d_artifacts if needs_download(da)]
    return sum(needed) if needed else None
