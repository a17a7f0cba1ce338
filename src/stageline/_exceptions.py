"""Every exception stageline raises on purpose derives from :class:`StagelineError`.

The tree::

    StagelineError
    ├── PipelineError                 a pipeline was built or driven wrongly
    │   └── StageConfigurationError   (also ValueError) bad stage list, same stage twice
    ├── StoreError                    the database refused or failed an operation
    │   ├── DatabaseURLError          (also ValueError) unknown or malformed database URL
    │   ├── StoreArgumentError        (also ValueError) a store call got an argument it cannot use
    │   ├── SchemaVersionError        the database was made by another schema version
    │   └── ContentTypeError          (also TypeError) a content type is declared wrongly
    ├── StorageError                  artifact storage (files on disk) failed
    └── DownloadError                 a download failed; ``url`` names it
        ├── DigestMismatch            the bytes differ from the expected digest
        ├── SizeMismatch              the body length differs from the expected size
        ├── ForbiddenDigestError      (also ValueError) a digest of a forbidden kind was asked for
        ├── HTTPStatusError           the server answered with an error status
        ├── DownloadTimeout           connect, read or total timeout
        └── DownloadConnectionError   the connection failed or broke mid-body

Argument errors also subclass :class:`ValueError` or :class:`TypeError`, so code that
catches the builtin kinds keeps working.

How task-group failures surface: when exactly one stage (or download) fails, the original
exception is re-raised unwrapped. When several fail at once, an :class:`ExceptionGroup`
holding each of them is raised; catch it with ``except*``.
"""

from __future__ import annotations

__all__ = [
    "ContentTypeError",
    "DatabaseURLError",
    "DigestMismatch",
    "DownloadConnectionError",
    "DownloadError",
    "DownloadTimeout",
    "ForbiddenDigestError",
    "HTTPStatusError",
    "PipelineError",
    "SchemaVersionError",
    "SizeMismatch",
    "StageConfigurationError",
    "StagelineError",
    "StorageError",
    "StoreArgumentError",
    "StoreError",
]


class StagelineError(Exception):
    """The root of every error stageline raises deliberately."""


class PipelineError(StagelineError):
    """A pipeline was assembled or driven in a way the engine does not allow."""


class StageConfigurationError(PipelineError, ValueError):
    """The list of stages given to ``create_pipeline`` is not valid."""


class StoreError(StagelineError):
    """The store (database layer) could not do what was asked."""


class DatabaseURLError(StoreError, ValueError):
    """A database URL has a scheme stageline does not support, or is malformed."""


class StoreArgumentError(StoreError, ValueError):
    """A store call was given an argument it cannot use.

    An unsaved object where a saved one is needed, content to remove that is not in the
    version, a remote without a name, a chunk size below 1. Nothing was written.

    Also a value that a database column cannot hold, refused before it reaches the
    database so that SQLite and PostgreSQL refuse it alike: text with a NUL character or
    that is not valid Unicode, a name, relative path or digest too long for its column or
    index, an integer beyond its column's range, NaN or infinity in a content key.
    """


class SchemaVersionError(StoreError):
    """The database was created by a schema version this stageline cannot use."""


class ContentTypeError(StoreError, TypeError):
    """A content type was declared incorrectly (e.g. without natural key fields)."""


class StorageError(StagelineError):
    """Artifact storage on disk failed (write, move, read)."""


class DownloadError(StagelineError):
    """A download failed.

    Attributes:
        url: the url that was being downloaded.
        attempts: how many tries were made before giving up (1 when not retried).
    """

    def __init__(self, message: str, *, url: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.url = url
        self.attempts = attempts


class DigestMismatch(DownloadError):
    """The downloaded bytes do not have the expected digest.

    Attributes:
        algorithm: the digest kind, e.g. ``"sha256"``.
        expected: the expected hex digest.
        actual: the hex digest of the bytes received.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        algorithm: str,
        expected: str,
        actual: str,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, url=url, attempts=attempts)
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual


class SizeMismatch(DownloadError):
    """The downloaded body does not have the expected size.

    Attributes:
        expected: the expected size in bytes.
        actual: the number of bytes received.
    """

    def __init__(
        self, message: str, *, url: str, expected: int, actual: int, attempts: int = 1
    ) -> None:
        super().__init__(message, url=url, attempts=attempts)
        self.expected = expected
        self.actual = actual


class ForbiddenDigestError(DownloadError, ValueError):
    """A digest of a kind that is not allowed (md5 and sha1 by default) was requested."""


class HTTPStatusError(DownloadError):
    """The server answered with an error status.

    Attributes:
        status_code: the HTTP status received.
        retry_after: the delay in seconds the server asked for with ``Retry-After``
            (429 and 503 answers), or None.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status_code: int,
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, url=url, attempts=attempts)
        self.status_code = status_code
        self.retry_after = retry_after


class DownloadTimeout(DownloadError):
    """A connect, read or total timeout expired."""


class DownloadConnectionError(DownloadError):
    """The connection could not be made, or broke before the body was complete."""
