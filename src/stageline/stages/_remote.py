"""``RemoteArtifactSaver``: remember where each declared file can be fetched again."""

from __future__ import annotations

from .._declarative import DeclarativeArtifact, DeclarativeContent, saved_file_pk
from .._exceptions import PipelineError, SyncError
from .._stage import Stage
from ..models import Content, ContentArtifact, Remote
from ..store import RemoteArtifactEntry, Store
from ._query import DEFAULT_BATCH_SIZE, check_batch_size

__all__ = ["RemoteArtifactSaver"]


class RemoteArtifactSaver(Stage):
    """Saves one remote artifact per declared artifact and remote, in bulk per batch.

    A remote artifact records the url (the first mirror) and every digest known for a
    saved unit's file, so that a deferred file can be fetched on demand and a missing
    one fetched again. A remote artifact that exists with another url gets the new url
    (the upstream moved the file); an unchanged one is left alone. Each remote is saved
    (``store.save_remote``) the first time this stage meets it in a run, before its
    remote artifacts. The files of units :class:`ContentSaver` saved in this sync are
    written without a lookup: it tells each declared file its content artifact (unless
    the unit or the path changed since); the others are looked up first.

    Args:
        store: where to save.
        batch_size: items per store call.

    Raises:
        StageConfigurationError: (a ``ValueError``) ``batch_size`` < 1.
    """

    def __init__(self, store: Store, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.store = store
        self.batch_size = check_batch_size(batch_size)
        self._remotes: dict[int, Remote] = {}

    async def run(self) -> None:
        """Save each batch's remotes and remote artifacts, then pass its items on in order.

        Raises:
            SyncError: a declared artifact's relative path matches no content artifact of
                its (saved) unit: the unit was declared with other paths than it was
                first saved with.
            PipelineError: a unit reached this stage unsaved (``ContentSaver`` must come
                before it).
            StoreError: the database failed.
        """
        self._remotes = {}
        async for batch in self.batches(self.batch_size):
            declared = [(d, da) for d in batch for da in d.d_artifacts if da.remote is not None]
            if declared:
                await self._save_batch(declared)
            await self.put_all(batch)

    async def _save_batch(
        self, declared: list[tuple[DeclarativeContent, DeclarativeArtifact]]
    ) -> None:
        entries: list[RemoteArtifactEntry] = []
        # The content artifacts ContentSaver saved in this sync need no lookup.
        known: list[int | None] = []
        for d, da in declared:
            content_pk = d.content.pk
            if content_pk is None:
                raise PipelineError(
                    f"RemoteArtifactSaver got the unsaved unit {d.content!r}; put ContentSaver "
                    "before it in the pipeline"
                )
            remote = da.remote
            assert remote is not None
            if id(remote) not in self._remotes:
                await self.store.save_remote(remote)
                self._remotes[id(remote)] = remote
            assert remote.pk is not None
            # The size and digests are the declared artifact's, checked when it was made
            # (and on every assignment since), so they are not checked again.
            entries.append((content_pk, da.relative_path, remote.pk, da.all_urls[0], da.artifact))
            known.append(saved_file_pk(da, content_pk))
        missing = await self.store.save_remote_artifacts_by_path(
            entries, content_artifact_pks=known
        )
        if missing:
            content_pk, path = missing[0]
            unit = next(d.content for d, _da in declared if d.content.pk == content_pk)
            found = await self.store.find_content_artifacts([unit])
            raise SyncError(_no_such_path(unit, path, found))


def _no_such_path(unit: Content, path: str, found: list[ContentArtifact]) -> str:
    paths = sorted(ca.relative_path for ca in found if ca.content.pk == unit.pk)
    return (
        f"{unit.type_name} {unit.natural_key()!r} (pk {unit.pk}) was declared with an artifact "
        f"at {path!r}, but the saved unit has no file there (its paths: {paths!r}); a unit "
        "must be declared with the same relative paths every time, so put what tells them "
        "apart into its natural_key_fields"
    )
