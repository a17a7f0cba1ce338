"""``FileContent``: a file of a file repository, at its relative path."""

from __future__ import annotations

from typing import ClassVar, Final

import attrs

from ...models import Content

__all__ = ["MANIFEST_NAME", "FileContent"]

#: The name of a manifest file; an entry of that name is a sub-repository.
MANIFEST_NAME: Final = "PULP_MANIFEST"


@attrs.define(eq=False, kw_only=True)
class FileContent(Content):
    """A file at a relative path of a file repository.

    Identified by its path and its sha256, so that a file whose bytes change becomes a new
    unit; a version holds one unit per path (the newest synced replaces the older). A
    sub-repository's ``PULP_MANIFEST`` is a unit of this type too, so a version (and an
    export of it) holds the whole tree of manifests.

    Attributes:
        relative_path: where the file sits in the repository, ``/``-separated.
        sha256: the file's sha256, lowercase hex.
        size: the file's size in bytes.
    """

    type_name: ClassVar[str] = "file.file"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("relative_path", "sha256")
    repo_key_fields: ClassVar[tuple[str, ...]] = ("relative_path",)

    relative_path: str
    sha256: str
    size: int

    @property
    def is_manifest(self) -> bool:
        """True when the file is a sub-repository's manifest (named ``PULP_MANIFEST``)."""
        return self.relative_path.rpartition("/")[2] == MANIFEST_NAME
