"""Running a sync, and serving what it saved.

``DeclarativeVersion(first_stage, repository).create()`` runs a first stage and the
default stages (:mod:`stageline.stages`) into a new repository version; a
:class:`Workspace` says where the store and the artifact storage are and how downloads
are made. :class:`ContentFetcher` opens the files of a version, fetching deferred ones
(on-demand and streamed remotes) when they are first asked for; :func:`export_version`
writes a version's files and a manifest into a folder. See
``docs/plugin-writing.md`` and ``docs/on-demand.md``.
"""

from ._declarative_version import DEFAULT_LOCK_TIMEOUT, Backend, DeclarativeVersion
from ._export import DEFAULT_EXPORT_CONCURRENCY, MANIFEST_NAME, ExportResult, export_version
from ._on_demand import ContentFetcher, open_content, open_content_fetcher
from ._opened import DEFAULT_CHUNK_SIZE, ContentStream, OpenedContent
from ._workspace import HOME_ENV, Workspace

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_EXPORT_CONCURRENCY",
    "DEFAULT_LOCK_TIMEOUT",
    "HOME_ENV",
    "MANIFEST_NAME",
    "Backend",
    "ContentFetcher",
    "ContentStream",
    "DeclarativeVersion",
    "ExportResult",
    "OpenedContent",
    "Workspace",
    "export_version",
    "open_content",
    "open_content_fetcher",
]
