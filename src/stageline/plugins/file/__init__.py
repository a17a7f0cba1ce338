"""The file plugin: sync a folder of files listed in a ``PULP_MANIFEST``.

A manifest has one ``relative_path,sha256,size`` line per file (``#`` comments and blank
lines allowed). An entry named ``PULP_MANIFEST`` in a sub-folder is a sub-repository,
synced relative to its folder, to any depth. :func:`sync_files` is the one call to make::

    result = await sync_files("https://example.org/repo/PULP_MANIFEST", "example")

It skips the pipeline when the manifest and the options are those of the last sync.
:class:`FileFirstStage` and :class:`FileContent` are the parts, for a pipeline of your
own; :func:`write_fixture` writes a repository to sync. See ``docs/plugins-file.md``.
"""

from ._content import MANIFEST_NAME, FileContent
from ._errors import ManifestError
from ._first_stage import (
    DEFAULT_READ_SIZE,
    PARSING_METADATA_CODE,
    PARSING_METADATA_MESSAGE,
    FileFirstStage,
    base_url,
)
from ._fixture import NESTED_FOLDER, Fixture, write_fixture
from ._manifest import MAX_LINE_BYTES, ManifestEntry, ManifestReader
from ._state import SyncRecord
from ._sync import (
    DOWNLOADING_METADATA_CODE,
    DOWNLOADING_METADATA_MESSAGE,
    FileSyncResult,
    manifest_url,
    sync_files,
)

__all__ = [
    "DEFAULT_READ_SIZE",
    "DOWNLOADING_METADATA_CODE",
    "DOWNLOADING_METADATA_MESSAGE",
    "MANIFEST_NAME",
    "MAX_LINE_BYTES",
    "NESTED_FOLDER",
    "PARSING_METADATA_CODE",
    "PARSING_METADATA_MESSAGE",
    "FileContent",
    "FileFirstStage",
    "FileSyncResult",
    "Fixture",
    "ManifestEntry",
    "ManifestError",
    "ManifestReader",
    "SyncRecord",
    "base_url",
    "manifest_url",
    "sync_files",
    "write_fixture",
]
