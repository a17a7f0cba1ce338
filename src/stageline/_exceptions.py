"""Every exception stageline raises on purpose derives from :class:`StagelineError`.

The tree::

    StagelineError
    ├── PipelineError                 a pipeline was built or driven wrongly
    │   └── StageConfigurationError   (also ValueError) bad stage list, same stage twice
    ├── StoreError                    the database refused or failed an operation
    │   ├── DatabaseURLError          (also ValueError) unknown or malformed database URL
    │   ├── StoreArgumentError        (also ValueError) a store call got an argument it cannot use
    │   ├── SchemaVersionError        the database was made by another schema version
    │   ├── ContentTypeError          (also TypeError) a content type is declared wrongly
    │   └── RepositoryBusyError       another sync is building a version of the repository
    ├── SyncError                     a first stage's declarations contradict saved content
    ├── ManifestError                 (stageline.plugins.file) a malformed or unsafe manifest line
    ├── ContentNotFound               (also LookupError) no such file, version or repository
    ├── ContentRangeError             (also ValueError) a byte range that is not within the file
    ├── ContentServerError            the content app's server cannot listen on its address
    ├── ExportError                   a version cannot be exported into the folder asked for
    ├── StorageError                  artifact storage (files on disk) failed
    │   └── ArtifactIntegrityError    a file's bytes differ from the sha256/size it is stored as
    ├── InvalidValueError             (also ValueError) an argument's value was refused
    │   ├── MalformedDigestError      a digest is not lowercase hex of its kind's length
    │   └── UnsafePathError           a relative path is absolute, climbs out or is not portable
    ├── InvalidTypeError              (also TypeError) an argument's type was refused
    ├── UsageError                    (also RuntimeError) a call at a moment it is not allowed
    ├── DownloaderFactoryError        (also RuntimeError) no DownloaderFactory is open
    │   └── DownloaderFactoryClosed   (also RuntimeError) it closed before or while a download ran
    └── DownloadError                 a download failed; ``url`` names it
        ├── DigestMismatch            the bytes differ from the expected digest
        ├── SizeMismatch              the body length differs from the expected size
        ├── ForbiddenDigestError      (also ValueError) a digest of a forbidden kind was asked for
        ├── UnsafeURLError            (also ValueError) a url of a scheme its remote may not fetch
        ├── HTTPStatusError           the server answered with an error status
        ├── DownloadTimeout           connect, read or total timeout
        └── DownloadConnectionError   the connection failed or broke mid-body

Argument errors also subclass :class:`ValueError` or :class:`TypeError`, so code that
catches the builtin kinds keeps working.

Messages never show secrets: :func:`redact_url` masks the credentials in a url, and
:class:`DownloadError` masks its ``url``.

How task-group failures surface: when exactly one stage (or download) fails, the original
exception is re-raised unwrapped. When several fail at once, an :class:`ExceptionGroup`
holding each of them is raised; catch it with ``except*``.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Final

__all__ = [
    "ArtifactIntegrityError",
    "ContentNotFound",
    "ContentRangeError",
    "ContentServerError",
    "ContentTypeError",
    "DatabaseURLError",
    "DigestMismatch",
    "DownloadConnectionError",
    "DownloadError",
    "DownloadTimeout",
    "DownloaderFactoryClosed",
    "DownloaderFactoryError",
    "ExportError",
    "ForbiddenDigestError",
    "HTTPStatusError",
    "InvalidTypeError",
    "InvalidValueError",
    "MalformedDigestError",
    "PipelineError",
    "RepositoryBusyError",
    "SchemaVersionError",
    "SizeMismatch",
    "StageConfigurationError",
    "StagelineError",
    "StorageError",
    "StoreArgumentError",
    "StoreError",
    "SyncError",
    "UnsafePathError",
    "UnsafeURLError",
    "UsageError",
    "redact_url",
]

# The userinfo of a url: after "//" (and an optional scheme), up to the last "@" before
# the path, query or fragment begins.
_USERINFO: Final = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.\-]*:)?//)([^/?#]*)@")

#: What a secret is replaced with, as httpx shows a url's password.
SECRET_MASK: Final = "[secure]"


def redact_url(url: str) -> str:
    """``url`` with the credentials in it masked, for messages, reprs and logs.

    As httpx shows a url: the password becomes ``[secure]``
    (``https://alice:[secure]@host/``); a username without a password, which is often a
    token, is masked whole (``https://[secure]@host/``). The value of a query parameter
    whose name holds a word such as ``token``, ``key``, ``sig``, ``signature``,
    ``secret``, ``password`` or ``credential`` (words split at ``-``, ``_`` and ``.``, any
    case) is masked too, as signed urls carry their
    signature there (``?X-Amz-Signature=[secure]``, ``?sig=[secure]``,
    ``?access_token=[secure]``). The rest is kept. Masking a masked url changes nothing.
    """
    match = _USERINFO.match(url)
    if match is not None:
        userinfo = match.group(2)
        user, has_password, _ = userinfo.partition(":")
        masked = f"{user}:{SECRET_MASK}" if has_password else SECRET_MASK
        url = f"{match.group(1)}{masked}@{url[match.end() :]}"
    return _redact_query(url)


# The words that make a query parameter's value a secret in redact_url().
_SECRET_QUERY_WORDS: Final = frozenset(
    {
        "apikey",
        "auth",
        "authorization",
        "credential",
        "credentials",
        "gda",  # Akamai's __gda__ tokens
        "hmac",
        "key",
        "passwd",
        "password",
        "pwd",
        "secret",
        "session",
        "sig",
        "signature",
        "token",
    }
)
_QUERY_NAME_WORDS: Final = re.compile(r"[-_.]+")


def _redact_query(url: str) -> str:
    start = url.find("?")
    if start < 0:
        return url
    end = url.find("#", start)
    if end < 0:
        end = len(url)
    fields = url[start + 1 : end].split("&")
    changed = False
    for index, field in enumerate(fields):
        name, has_value, value = field.partition("=")
        if not has_value or not value or value == SECRET_MASK:
            continue
        words = _QUERY_NAME_WORDS.split(urllib.parse.unquote(name).lower())
        if not _SECRET_QUERY_WORDS.isdisjoint(words):
            fields[index] = f"{name}={SECRET_MASK}"
            changed = True
    if not changed:
        return url
    return f"{url[: start + 1]}{'&'.join(fields)}{url[end:]}"


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


class RepositoryBusyError(StoreError):
    """Another sync (of this or another process) is building a new version of the
    repository: raised at once by ``store.new_version()``, and by a sync that waited for
    the other one longer than its ``lock_timeout``."""


class SyncError(StagelineError):
    """A sync cannot go on: what its first stage declared contradicts the saved content
    (e.g. an artifact at a relative path the saved unit does not have)."""


class ContentNotFound(StagelineError, LookupError):
    """A repository version has no file at the path asked for, or there is no such version
    or repository; or the file is deferred and nothing says where to fetch it.

    Raised by :class:`~stageline.sync.ContentFetcher` (a content app's 404). The path is
    looked up exactly as given, so a path that leaves the version (``../x``) is simply
    not found.

    Attributes:
        repository: the repository's name (None when the file was opened by its
            content artifact, not looked up).
        version: the version's number, or None for the latest (or not looked up).
        relative_path: the path asked for, or None when the repository or version itself
            was not found.
    """

    def __init__(
        self,
        message: str,
        *,
        repository: str | None = None,
        version: int | None = None,
        relative_path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.repository = repository
        self.version = version
        self.relative_path = relative_path


class ContentRangeError(StagelineError, ValueError):
    """A byte range to read is not within the file (a content app's 416).

    Attributes:
        start: the first byte asked for.
        end: the byte after the last one asked for.
        size: the file's size.
    """

    def __init__(self, message: str, *, start: int, end: int, size: int) -> None:
        super().__init__(message)
        self.start = start
        self.end = end
        self.size = size


class ContentServerError(StagelineError):
    """The content app's server cannot listen on the address asked for (in use, not local, …)."""


class ExportError(StagelineError):
    """A repository version cannot be exported into the folder asked for: it is not empty
    (and overwriting was not allowed), or a file cannot be written there.

    Attributes:
        path: the folder or file concerned.
    """

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class StorageError(StagelineError):
    """Artifact storage on disk failed (write, move, read)."""


class ArtifactIntegrityError(StorageError):
    """A file's bytes do not match the sha256 (or size) it was to be stored under.

    Raised by :meth:`~stageline.storage.ArtifactStorage.store` before the file reaches its
    place in storage: nothing is stored under a digest its bytes do not have.

    Attributes:
        path: the file that was refused.
        expected_sha256: the sha256 the artifact declares.
        actual_sha256: the sha256 of the file's bytes.
        expected_size: the size the artifact declares (None when it declares none).
        actual_size: the file's size in bytes.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path,
        expected_sha256: str,
        actual_sha256: str,
        expected_size: int | None,
        actual_size: int,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.expected_sha256 = expected_sha256
        self.actual_sha256 = actual_sha256
        self.expected_size = expected_size
        self.actual_size = actual_size


class InvalidValueError(StagelineError, ValueError):
    """An argument has a value stageline cannot use (a missing content, ``urls`` given as
    one string, a negative size, a batch size of 0, …); the message names the argument and
    the value received."""


class InvalidTypeError(StagelineError, TypeError):
    """An argument is of a type stageline cannot use (a clock that is not callable, a
    reporter without the reporter methods, …); the message names the argument."""


class UsageError(StagelineError, RuntimeError):
    """A call came at a moment it is not allowed (a progress report updated after it
    finished, a reporter closed twice, …); the message says what to do instead."""


class MalformedDigestError(InvalidValueError):
    """A digest is not hex of its kind's length (a truncated sha256, a sha512 given as the
    sha256, …): no bytes could ever match it."""


class DownloaderFactoryError(StagelineError, RuntimeError):
    """A download needed a :class:`~stageline.download.DownloaderFactory` and none was open.

    Not a :class:`DownloadError`: it is a mistake in the code around the downloads, which
    no retry or mirror can help.
    """


class DownloaderFactoryClosed(DownloaderFactoryError):
    """The download's factory was closed before the download ran, or while it ran.

    Keep the factory open until every download made in it has finished (open it around
    the task group that runs them).
    """


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
        url: the url that was being downloaded, with any credentials in it masked
            (see :func:`redact_url`); the message must name it masked too.
        attempts: how many tries were made before giving up (1 when not retried).
    """

    def __init__(self, message: str, *, url: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.url = redact_url(url)
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


class UnsafeURLError(DownloadError, ValueError):
    """A url has a scheme its remote may not fetch, e.g. ``file://`` for an http(s) remote.

    Urls come from upstream metadata, which is untrusted: a remote fetches only the
    schemes of its own url (see ``DownloaderFactory.allowed_schemes``).
    """


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
