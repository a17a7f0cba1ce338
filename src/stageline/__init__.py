"""stageline: synchronize content repositories with a Stages API pipeline on AnyIO.

Public names are re-exported here; everything in modules whose name starts with an
underscore is private.
"""

from ._about import VERSION
from ._declarative import (
    DeclarativeArtifact,
    DeclarativeContent,
    DownloaderFactoryLike,
    DownloaderLike,
    DownloadResultLike,
)
from ._exceptions import (
    ArtifactIntegrityError,
    ContentNotFound,
    ContentRangeError,
    ContentServerError,
    ContentTypeError,
    DatabaseURLError,
    DigestMismatch,
    DownloadConnectionError,
    DownloaderFactoryClosed,
    DownloaderFactoryError,
    DownloadError,
    DownloadTimeout,
    ForbiddenDigestError,
    HTTPStatusError,
    InvalidTypeError,
    InvalidValueError,
    MalformedDigestError,
    PipelineError,
    RepositoryBusyError,
    SchemaVersionError,
    SizeMismatch,
    StageConfigurationError,
    StagelineError,
    StorageError,
    StoreArgumentError,
    StoreError,
    SyncError,
    UnsafePathError,
    UnsafeURLError,
    UsageError,
    redact_url,
)
from ._pipeline import DEFAULT_MAXSIZE, create_pipeline
from ._resolvable import PipelineHandle, PipelineItem, Resolvable, current_pipeline
from ._stage import CHECKPOINT_INTERVAL, EndStage, Stage
from .sync import DeclarativeVersion, Workspace

__version__ = VERSION

__all__ = [
    "CHECKPOINT_INTERVAL",
    "DEFAULT_MAXSIZE",
    "ArtifactIntegrityError",
    "ContentNotFound",
    "ContentRangeError",
    "ContentServerError",
    "ContentTypeError",
    "DatabaseURLError",
    "DeclarativeArtifact",
    "DeclarativeContent",
    "DeclarativeVersion",
    "DigestMismatch",
    "DownloadConnectionError",
    "DownloadError",
    "DownloadResultLike",
    "DownloadTimeout",
    "DownloaderFactoryClosed",
    "DownloaderFactoryError",
    "DownloaderFactoryLike",
    "DownloaderLike",
    "EndStage",
    "ForbiddenDigestError",
    "HTTPStatusError",
    "InvalidTypeError",
    "InvalidValueError",
    "MalformedDigestError",
    "PipelineError",
    "PipelineHandle",
    "PipelineItem",
    "RepositoryBusyError",
    "Resolvable",
    "SchemaVersionError",
    "SizeMismatch",
    "Stage",
    "StageConfigurationError",
    "StagelineError",
    "StorageError",
    "StoreArgumentError",
    "StoreError",
    "SyncError",
    "UnsafePathError",
    "UnsafeURLError",
    "UsageError",
    "Workspace",
    "__version__",
    "create_pipeline",
    "current_pipeline",
    "redact_url",
]
