"""The messages and codes of the reports stageline's own stages open.

Shared by the stages that report and by whoever reads reports (the CLI, tests), so that
neither side spells them on its own. Pulp uses the same strings, so tools that watch
Pulp's progress reports recognise them.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ASSOCIATING_CONTENT_CODE",
    "ASSOCIATING_CONTENT_MESSAGE",
    "DOWNLOADING_ARTIFACTS_CODE",
    "DOWNLOADING_ARTIFACTS_MESSAGE",
    "DOWNLOADING_BYTES_CODE",
    "DOWNLOADING_BYTES_MESSAGE",
    "UNASSOCIATING_CONTENT_CODE",
    "UNASSOCIATING_CONTENT_MESSAGE",
]

#: ``ArtifactDownloader``: one unit per file downloaded (a file several units of a
#: sync declare counts once).
DOWNLOADING_ARTIFACTS_MESSAGE: Final = "Downloading Artifacts"
DOWNLOADING_ARTIFACTS_CODE: Final = "sync.downloading.artifacts"

#: ``ArtifactDownloader``, beside the files: the bytes of the files downloaded.
DOWNLOADING_BYTES_MESSAGE: Final = "Downloading Artifacts (bytes)"
DOWNLOADING_BYTES_CODE: Final = "sync.downloading.bytes"

#: ``ContentAssociation``: one unit per content unit added to the new version.
ASSOCIATING_CONTENT_MESSAGE: Final = "Associating Content"
ASSOCIATING_CONTENT_CODE: Final = "associating.content"

#: ``ContentUnassociation`` (mirror mode): one unit per content unit removed.
UNASSOCIATING_CONTENT_MESSAGE: Final = "Un-Associating Content"
UNASSOCIATING_CONTENT_CODE: Final = "unassociating.content"
