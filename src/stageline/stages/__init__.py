"""The default stages of a sync pipeline, in the order ``DeclarativeVersion`` runs them.

1. :class:`QueryExistingContents`: swap unsaved content for saved content.
2. :class:`QueryExistingArtifacts`: swap unsaved artifacts for saved ones
   (then, with alternate content sources, :class:`ACSArtifactHandler` finds which files
   a source has).
3. :class:`ArtifactDownloader`: download what is missing and not deferred (after an
   :class:`ArtifactResourceBudget`, when the sync caps what it holds downloaded).
4. :class:`ArtifactSaver`: store the files and save their artifacts.
5. :class:`ContentSaver`: save new content and its content artifacts.
6. :class:`RemoteArtifactSaver`: record where each file can be fetched.
7. :class:`ResolveContentFutures`: resolve every item.
8. :class:`ContentAssociation`: add the content to the new version; in mirror mode
   :class:`ContentUnassociation` then removes what the sync did not bring.

Each stage takes its collaborators (store, storage, downloader factory, new version) as
arguments and works in bulk per batch. The query and artifact stages may be reordered
or dropped (an on-demand pipeline drops the three artifact stages). See
``docs/plugin-writing.md``.
"""

from ._acs import ACSArtifactHandler, AlternateContentSource, AlternateLocation
from ._associate import ContentAssociation, ContentUnassociation, ResolveContentFutures
from ._budget import ArtifactResourceBudget
from ._download import ArtifactDownloader, is_deferred
from ._failures import DownloadFailurePolicy, OnError, SkippedUnit
from ._generic import DEFAULT_MAX_CONCURRENT_CONTENT, GenericDownloader
from ._query import DEFAULT_BATCH_SIZE, QueryExistingArtifacts, QueryExistingContents
from ._remote import RemoteArtifactSaver
from ._save import ArtifactSaver, ContentSaver

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_CONCURRENT_CONTENT",
    "ACSArtifactHandler",
    "AlternateContentSource",
    "AlternateLocation",
    "ArtifactDownloader",
    "ArtifactResourceBudget",
    "ArtifactSaver",
    "ContentAssociation",
    "ContentSaver",
    "ContentUnassociation",
    "DownloadFailurePolicy",
    "GenericDownloader",
    "OnError",
    "QueryExistingArtifacts",
    "QueryExistingContents",
    "RemoteArtifactSaver",
    "ResolveContentFutures",
    "SkippedUnit",
    "is_deferred",
]
