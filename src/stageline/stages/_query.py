"""The query stages: swap what a first stage declared for what the store already has."""

from __future__ import annotations

from typing import Final

from .._declarative import DeclarativeArtifact
from .._exceptions import StageConfigurationError
from .._stage import Stage
from ..models import Artifact
from ..store import Store

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "QueryExistingArtifacts",
    "QueryExistingContents",
    "check_batch_size",
]

#: Items per database round trip of the batching stages unless told otherwise.
DEFAULT_BATCH_SIZE: Final = 500


def check_batch_size(value: object) -> int:
    """``value`` when it is an int >= 1.

    Raises:
        StageConfigurationError: (a ``ValueError``) otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StageConfigurationError(f"batch_size must be an int >= 1, got {value!r}")
    return value


class QueryExistingContents(Stage):
    """Swaps each unsaved unit for the saved unit with the same type and natural key.

    One store query per batch. A unit found keeps the saved field values (what was
    saved first wins); its declared artifacts are left as they are, so that a file the
    saved unit lacks (first synced on demand) can still be downloaded and filled in.

    Args:
        store: where to look.
        batch_size: items per query.

    Raises:
        StageConfigurationError: (a ``ValueError``) ``batch_size`` < 1.
    """

    def __init__(self, store: Store, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.store = store
        self.batch_size = check_batch_size(batch_size)

    async def run(self) -> None:
        """Query and swap each batch, then pass its items on in order.

        Raises:
            ContentTypeError: a unit's class is not a declared content type.
            StoreError: the database failed.
        """
        async for batch in self.batches(self.batch_size):
            unsaved = [d for d in batch if not d.content.saved]
            if unsaved:
                found = await self.store.find_content([d.content for d in unsaved])
                for d, saved in zip(unsaved, found, strict=True):
                    if saved is not None:
                        d.content = saved
            for d in batch:
                await self.put(d)


class QueryExistingArtifacts(Stage):
    """Swaps each unsaved declared artifact for the saved one with the same sha256.

    One store query per batch. The saved artifact replaces the declared one only when
    they agree on the size and on every digest both know; otherwise the declared one
    stays, and its download then reports how the upstream file differs from its
    metadata. Declared artifacts without a sha256 are left to the downloader.

    Args:
        store: where to look.
        batch_size: items per query.

    Raises:
        StageConfigurationError: (a ``ValueError``) ``batch_size`` < 1.
    """

    def __init__(self, store: Store, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.store = store
        self.batch_size = check_batch_size(batch_size)

    async def run(self) -> None:
        """Query and swap each batch, then pass its items on in order.

        Raises:
            StoreError: the database failed.
        """
        async for batch in self.batches(self.batch_size):
            wanted: list[tuple[str, DeclarativeArtifact]] = [
                (sha256, da)
                for d in batch
                for da in d.d_artifacts
                if not da.artifact.saved and (sha256 := da.artifact.sha256) is not None
            ]
            if wanted:
                found = await self.store.find_artifacts(sha256 for sha256, _da in wanted)
                for sha256, da in wanted:
                    saved = found.get(sha256)
                    if saved is not None and _agree(da.artifact, saved):
                        da.artifact = saved
            for d in batch:
                await self.put(d)


def _agree(declared: Artifact, saved: Artifact) -> bool:
    if declared.size is not None and saved.size is not None and declared.size != saved.size:
        return False
    for kind, value in declared.digests().items():
        known = getattr(saved, kind)
        if known is not None and known != value:
            return False
    return True
