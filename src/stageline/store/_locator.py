"""Where a stored artifact's file is: the store's small seam to artifact storage."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

__all__ = ["ArtifactLocator"]


class ArtifactLocator(Protocol):
    """Anything that says where the file of a sha256 is stored.

    :class:`stageline.storage.ArtifactStorage` is one. The database stores no file paths
    (a file's location is derived from its sha256 and the storage root, so the storage
    can move and hosts that mount it at different paths can share one database): a store
    opened with a locator gives every artifact it returns ``file =
    locator.path_for(sha256)``; without one, their ``file`` is None.
    """

    def path_for(self, sha256: str) -> Path:
        """The path of the stored file whose sha256 is ``sha256``."""
        ...
