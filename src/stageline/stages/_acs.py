"""Alternate content sources: fetch a file from a nearer copy first, by its sha256."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Final

import attrs

from .._declarative import DeclarativeArtifact
from .._exceptions import StageConfigurationError, redact_url
from .._stage import Stage
from ..models import Remote
from ..store import Store
from ._download import needs_download
from ._query import DEFAULT_BATCH_SIZE, check_batch_size

__all__ = ["ACSArtifactHandler", "AlternateContentSource", "AlternateLocation"]

#: Finds remembered by sha256 between this stage and the downloader. The units between
#: the two are bounded by the buffers, a batch and the downloader's window (a few
#: thousand with the defaults); a find forgotten early costs the alternate, never a file.
_REMEMBERED_FINDS: Final = 10_000


def _named_remote(instance: object, attribute: attrs.Attribute[Remote], value: Remote) -> None:
    if not isinstance(value, Remote):
        raise StageConfigurationError(
            f"AlternateContentSource: remote must be a stageline.models.Remote, got {value!r}"
        )
    if not isinstance(value.name, str) or not value.name.strip():
        raise StageConfigurationError(
            f"AlternateContentSource: the remote of {redact_url(value.url)} has no name; an "
            "alternate content source is found by its remote's name, so give it the name "
            "it was synced with"
        )


@attrs.frozen(eq=False)
class AlternateContentSource:
    """A nearer copy of upstream files (a mirror, a local share), used by digest.

    An alternate content source is a remote whose content the store already knows: sync
    it on demand into a repository of its own (its "refresh"), which records a remote
    artifact with the url and sha256 of each of its files without downloading them.
    A sync with ``acs=True`` then fetches every file whose sha256 the source has from the
    source's url first, with the source remote's settings (credentials, TLS, proxy,
    concurrency), and falls back to the file's declared urls when that fails.

    Args:
        remote: the source's remote, as it was synced (it is matched by name).

    Raises:
        StageConfigurationError: (a ``ValueError``) ``remote`` is not a named Remote.
    """

    remote: Remote = attrs.field(validator=_named_remote)


@attrs.frozen(eq=False)
class AlternateLocation:
    """Where an alternate content source serves one file: its remote and the url."""

    remote: Remote
    url: str


class ACSArtifactHandler(Stage):
    """Finds which declared files the alternate content sources have, for the downloader.

    For each batch, the files the download stage will fetch (unsaved, without a file,
    not deferred) that carry a sha256 are looked up among the remote artifacts of each
    source's remote (one store query per source and batch). The download stage given this
    handler (``ArtifactDownloader(acs=handler)``) then tries each source that has a file,
    in the order of ``sources``, before the file's declared urls. Items pass unchanged
    and in order.

    Put it after the query stages and before the download stage (before an
    :class:`ArtifactResourceBudget` too). :class:`~stageline.DeclarativeVersion` does
    this with ``acs=True``.

    Args:
        store: where the sources' remote artifacts are.
        sources: the alternate content sources, most preferred first.
        batch_size: items per query.

    Raises:
        StageConfigurationError: (a ``ValueError``) ``sources`` holds something else than
            an :class:`AlternateContentSource`, or ``batch_size`` < 1.
    """

    def __init__(
        self,
        store: Store,
        sources: Iterable[AlternateContentSource],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.store = store
        self.sources = check_sources(sources)
        self.batch_size = check_batch_size(batch_size)
        self._found: OrderedDict[str, tuple[AlternateLocation, ...]] = OrderedDict()

    async def run(self) -> None:
        """Look each batch's files up in the sources, then pass its items on in order.

        Raises:
            StoreError: the database failed.
        """
        async for batch in self.batches(self.batch_size):
            wanted = {
                sha256
                for d in batch
                for da in d.d_artifacts
                if needs_download(da) and (sha256 := da.artifact.sha256) is not None
            }
            if wanted and self.sources:
                await self._look_up(wanted)
            await self.put_all(batch)

    def alternates_for(self, d_artifact: DeclarativeArtifact) -> tuple[AlternateLocation, ...]:
        """Where the sources serve this declared file, most preferred first (maybe none)."""
        sha256 = d_artifact.artifact.sha256
        if sha256 is None:
            return ()
        return self._found.get(sha256, ())

    async def _look_up(self, wanted: set[str]) -> None:
        found: dict[str, list[AlternateLocation]] = {}
        for source in self.sources:
            urls = await self.store.find_remote_artifact_urls(source.remote, wanted)
            for sha256, url in urls.items():
                found.setdefault(sha256, []).append(AlternateLocation(source.remote, url))
        for sha256, locations in found.items():
            self._found[sha256] = tuple(locations)
            self._found.move_to_end(sha256)
        while len(self._found) > _REMEMBERED_FINDS:
            self._found.popitem(last=False)


def check_sources(sources: Iterable[AlternateContentSource]) -> tuple[AlternateContentSource, ...]:
    """``sources`` as a tuple, each an :class:`AlternateContentSource`.

    Raises:
        StageConfigurationError: (a ``ValueError``) one is something else.
    """
    checked = tuple(sources)
    for source in checked:
        if not isinstance(source, AlternateContentSource):
            raise StageConfigurationError(
                "alternate content sources must be AlternateContentSource(remote) objects, "
                f"got {source!r}"
            )
    return checked
