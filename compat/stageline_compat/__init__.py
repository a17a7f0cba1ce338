"""The asyncio-era Stages API on stageline, so that such plugins port by changing imports.

Import what a plugin imported from its stages package from here instead::

    from stageline_compat import DeclarativeArtifact, DeclarativeContent, Stage

The classes are stageline's own, extended with what asyncio-era plugins and their unit
tests rely on: stages wired by hand to ``asyncio.Queue``s (``_connect(in_q, out_q)``,
``None`` as the end marker, ``await stage()``), ``create_pipeline`` as a coroutine for
``asyncio.run``, ``get_or_create_future()``, stages made without arguments inside a
``DeclarativeVersion`` sync, ``remote.get_downloader(url=...)``. Shimmed and native stages
mix in one pipeline. Everything here runs on asyncio only. ``docs/porting.md`` walks
through a whole plugin and lists every difference a porter meets.
"""

from ._declarative import DeclarativeArtifact, DeclarativeContent, RemoteDownloads
from ._progress import ProgressReport
from ._remote import Remote
from ._stage import EndStage, Stage, create_pipeline
from ._stages import (
    ACSArtifactHandler,
    ArtifactDownloader,
    ArtifactResourceBudget,
    ArtifactSaver,
    ContentAssociation,
    ContentSaver,
    ContentUnassociation,
    GenericDownloader,
    QueryExistingArtifacts,
    QueryExistingContents,
    RemoteArtifactSaver,
    ResolveContentFutures,
)
from ._sync import DeclarativeVersion

__all__ = [
    "ACSArtifactHandler",
    "ArtifactDownloader",
    "ArtifactResourceBudget",
    "ArtifactSaver",
    "ContentAssociation",
    "ContentSaver",
    "ContentUnassociation",
    "DeclarativeArtifact",
    "DeclarativeContent",
    "DeclarativeVersion",
    "EndStage",
    "GenericDownloader",
    "ProgressReport",
    "QueryExistingArtifacts",
    "QueryExistingContents",
    "Remote",
    "RemoteArtifactSaver",
    "RemoteDownloads",
    "ResolveContentFutures",
    "Stage",
    "create_pipeline",
]
