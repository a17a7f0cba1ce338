"""stageline: synchronize content repositories with a Stages API pipeline on AnyIO.

Public names are re-exported here; everything in modules whose name starts with an
underscore is private.
"""

from ._declarative import DeclarativeArtifact, DeclarativeContent
from ._exceptions import (
    ContentTypeError,
    DatabaseURLError,
    DigestMismatch,
    DownloadConnectionError,
    DownloadError,
    DownloadTimeout,
    ForbiddenDigestError,
    HTTPStatusError,
    InvalidValueError,
    MalformedDigestError,
    PipelineError,
    SchemaVersionError,
    SizeMismatch,
    StageConfigurationError,
    StagelineError,
    StorageError,
    StoreError,
    UnsafePathError,
)
from ._pipeline import DEFAULT_MAXSIZE, create_pipeline
from ._resolvable import PipelineHandle, PipelineItem, Resolvable, current_pipeline
from ._stage import CHECKPOINT_INTERVAL, EndStage, Stage

__version__ = "0.1.0.dev0"

__all__ = [
    "CHECKPOINT_INTERVAL",
    "DEFAULT_MAXSIZE",
    "ContentTypeError",
    "DatabaseURLError",
    "DeclarativeArtifact",
    "DeclarativeContent",
    "DigestMismatch",
    "DownloadConnectionError",
    "DownloadError",
    "DownloadTimeout",
    "EndStage",
    "ForbiddenDigestError",
    "HTTPStatusError",
    "InvalidValueError",
    "MalformedDigestError",
    "PipelineError",
    "PipelineHandle",
    "PipelineItem",
    "Resolvable",
    "SchemaVersionError",
    "SizeMismatch",
    "Stage",
    "StageConfigurationError",
    "StagelineError",
    "StorageError",
    "StoreError",
    "UnsafePathError",
    "__version__",
    "create_pipeline",
    "current_pipeline",
]
