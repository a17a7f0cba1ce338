"""``RemoteArtifactSaver``: remember where each declared file can be fetched again."""

from __future__ import annotations

from .._declarative import DeclarativeArtifact, DeclarativeContent
from .._exceptions import PipelineError, SyncError
from .._stage import Stage
from ..models import Content, ContentArtifact, Remote, trusted_remote_artifact
from ..store import Store
from ._query import DEFAULT_BATCH_SIZE, check_batch_size

__all__ = ["RemoteArtifactSaver"]


class RemoteArtifactSaver(Stage):
    """Saves one remote artifact per declared artifact and remote, in bulk per batch.

    A remote artifact records the url (the first mirror) and every digest known for a
    saved unit's file, so that a deferred file can be fetched on demand and a missing
    one fetched again. A remote artifact that exists with another url gets the new url
    (the upstream moved the file); an unchanged one is left alone. Each remote is saved
    (``store.save_remote``) the first time this stage meets it in a run, before its
    remote artifacts.

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
        units: dict[int, Content] = {}
        for d, _da in declared:
            if d.content.pk is None:
                raise PipelineError(
                    f"RemoteArtifactSaver got the unsaved unit {d.content!r}; put ContentSaver "
                    "before it in the pipeline"
                )
            units[d.content.pk] = d.content
        for _d, da in declared:
            assert da.remote is not None
            if id(da.remote) not in self._remotes:
                await self.store.save_remote(da.remote)
                self._remotes[id(da.remote)] = da.remote
        found = await self.store.find_content_artifacts(list(units.values()))
        by_path: dict[tuple[int, str], ContentArtifact] = {
            (ca.content.pk or 0, ca.relative_path): ca for ca in found
        }
        remote_artifacts = []
        for d, da in declared:
            ca = by_path.get((d.content.pk or 0, da.relative_path))
            if ca is None:
                raise SyncError(_no_such_path(d.content, da.relative_path, found))
            assert da.remote is not None
            # The size and digests are the declared artifact's, checked when it was made
            # (and on every assignment since), so they are not checked again.
            remote_artifacts.append(
                trusted_remote_artifact(
                    url=da.all_urls[0],
                    content_artifact=ca,
                    remote=da.remote,
                    digests_of=da.artifact,
                )
            )
        await self.store.save_remote_artifacts(remote_artifacts)


def _no_such_path(unit: Content, path: str, found: list[ContentArtifact]) -> str:
    paths = sorted(ca.relative_path for ca in found if ca.content.pk == unit.pk)
    return (
        f"{unit.type_name} {unit.natural_key()!r} (pk {unit.pk}) was declared with an artifact "
        f"at {path!r}, but the saved unit has no file there (its paths: {paths!r}); a unit "
        "must be declared with the same relative paths every time, so put what tells them "
        "apart into its natural_key_fields"
    )
