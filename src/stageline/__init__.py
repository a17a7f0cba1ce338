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
    PipelineError,
    SchemaVersionError,
    SizeMismatch,
    StageConfigurationError,
    StagelineError,
    StorageError,
    StoreArgumentError,
    StoreError,
)
from ._pipeline import DEFAULT_MAXSIZE, create_pipeline
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
    "PipelineError",
    "SchemaVersionError",
    "SizeMismatch",
    "Stage",
    "StageConfigurationError",
    "StagelineError",
    "StorageError",
    "StoreArgumentError",
    "StoreError",
    "__version__",
    "create_pipeline",
]
