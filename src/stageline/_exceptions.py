"""Every exception stageline raises on purpose derives from :class:`StagelineError`.

The tree::

    StagelineError
    ├── PipelineError                 a pipeline was built or driven wrongly
    │   └── StageConfigurationError   (also ValueError) bad stage list, same stage twice
    ├── StoreError                    the database refused or failed an operation
    │   ├── DatabaseURLError          (also ValueError) unknown or malformed database URL
    │   ├── SchemaVersionError        the database was made by another schema version
    │   └── ContentTypeError          (also TypeError) a content type is declared wrongly
    ├── StorageError                  artifact storage (files on disk) failed
    ├── InvalidValueError             (also ValueError) a model or declarative value was refused
    │   ├── MalformedDigestError      a digest is not lowercase hex of its kind's length
    │   └── UnsafePathError           a relative path is absolute, climbs out or is not portable
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
    "InvalidValueError",
    "MalformedDigestError",
    "PipelineError",
    "SchemaVersionError",
    "SizeMismatch",
    "StageConfigurationError",
    "StagelineError",
    "StorageError",
    "StoreError",
    "UnsafePathError",
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


class SchemaVersionError(StoreError):
    """The database was created by a schema version this stageline cannot use."""


class ContentTypeError(StoreError, TypeError):
    """A content type was declared incorrectly (e.g. without natural key fields)."""


class StorageError(StagelineError):
    """Artifact storage on disk failed (write, move, read)."""


class InvalidValueError(StagelineError, ValueError):
    """A model or a declarative object was given a value it cannot hold (a missing content,
    ``urls`` given as one string, a negative size, …); the message names the argument."""


class MalformedDigestError(InvalidValueError):
    """A digest is not hex of its kind's length (a truncated sha256, a sha512 given as the
    sha256, …): no bytes could ever match it."""


class UnsafePathError(InvalidValueError):
    """A relative path could reach outside the folder it is meant for, or be read
    differently on another system: it is absolute, has an empty, ``.`` or ``..`` segment,
    or holds a backslash, NUL or another control character.

    Relative paths come from upstream metadata, which is untrusted: they are checked where
    a declarative or content artifact is made (:func:`stageline.models.check_relative_path`),
    so that exporting or serving a repository can rely on them.
    """


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
