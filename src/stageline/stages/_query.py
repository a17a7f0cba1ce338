"""The query stages: swap what a first stage declared for what the store already has."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .._declarative import DeclarativeArtifact
from .._exceptions import StageConfigurationError
from .._stage import Stage
from ..download import DEFAULT_ALLOWED_DIGESTS, check_allowed_digests
from ..models import DIGEST_FIELDS, Artifact
from ..store import Store

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "QueryExistingArtifacts",
    "QueryExistingContents",
    "check_batch_size",
]

#: Items per database round trip of the batching stages unless told otherwise.
DEFAULT_BATCH_SIZE: Final = 1000

#: Digest kinds, strongest first (DIGEST_FIELDS lists them weakest first).
_STRONGEST_FIRST: Final = tuple(reversed(DIGEST_FIELDS))


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
            await self.put_all(batch)


class QueryExistingArtifacts(Stage):
    """Swaps each unsaved declared artifact for the saved one with the same digest.

    A declared artifact is looked up by the strongest allowed digest it carries (sha512,
    then sha384, sha256, sha224), so upstream metadata without a sha256 still finds the
    saved file; one not found that way is looked up by its next weaker allowed digest (a
    saved artifact may lack a kind that was not allowed when it was downloaded). Digest
    kinds that are not allowed, md5 and sha1 by default, are never used: a match on a
    broken digest could hand a unit somebody else's file. One store query per digest
    kind present in a batch (usually one, by sha256).

    The saved artifact replaces the declared one only when they agree on the size and on
    every digest both know; otherwise the declared one stays, and its download then
    reports how the upstream file differs from its metadata. Declared artifacts without
    an allowed digest are left to the downloader.

    Args:
        store: where to look.
        batch_size: items per query.
        allowed_digests: the digest kinds trusted for matching: the downloads' (the
            sync's ``DownloaderFactory.allowed_digests``); it must contain sha256.

    Raises:
        StageConfigurationError: (a ``ValueError``) ``batch_size`` < 1, or
            ``allowed_digests`` has an unknown kind or lacks sha256.
    """

    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        allowed_digests: Iterable[str] = DEFAULT_ALLOWED_DIGESTS,
    ) -> None:
        self.store = store
        self.batch_size = check_batch_size(batch_size)
        try:
            allowed = check_allowed_digests(allowed_digests)
        except ValueError as exc:
            raise StageConfigurationError(f"QueryExistingArtifacts: {exc}") from exc
        #: The kinds used for matching, strongest first.
        self.matching_kinds: tuple[str, ...] = tuple(k for k in _STRONGEST_FIRST if k in allowed)

    async def run(self) -> None:
        """Query and swap each batch, then pass its items on in order.

        Raises:
            StoreError: the database failed.
        """
        async for batch in self.batches(self.batch_size):
            unmatched = [da for d in batch for da in d.d_artifacts if not da.artifact.saved]
            for kind in self.matching_kinds:
                if not unmatched:
                    break
                unmatched = await self._match(kind, unmatched)
            await self.put_all(batch)

    async def _match(
        self, kind: str, declared: list[DeclarativeArtifact]
    ) -> list[DeclarativeArtifact]:
        """Swap the artifacts found by ``kind``; return those still unmatched."""
        wanted = [(value, da) for da in declared if (value := getattr(da.artifact, kind))]
        if not wanted:
            return declared
        if kind == "sha256":
            found = await self.store.find_artifacts(value for value, _da in wanted)
        else:
            found = await self.store.find_artifacts_by_digest(kind, (v for v, _da in wanted))
        matched: set[int] = set()
        for value, da in wanted:
            saved = found.get(value)
            if saved is not None and _agree(da.artifact, saved):
                da.artifact = saved
                matched.add(id(da))
        return [da for da in declared if id(da) not in matched]


def _agree(declared: Artifact, saved: Artifact) -> bool:
    if declared.size is not None and saved.size is not None and declared.size != saved.size:
        return False
    for kind, value in declared.digests().items():
        known = getattr(saved, kind)
        if known is not None and known != value:
            return False
    return True
