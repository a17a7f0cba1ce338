"""Downloads: validated, retried, rate-limited transfers over HTTP(S) and ``file://``.

Open a :class:`DownloaderFactory` around a sync: it shares one connection pool,
concurrency limit and rate limit per remote, and closes them all at the end.
``factory.get_downloader(remote, url=..., expected_digests=..., expected_size=...)``
returns a downloader; ``await downloader.run()`` returns a :class:`DownloadResult`.
See ``docs/downloads.md``.
"""

from ._base import BaseDownloader, DownloadResult
from ._factory import (
    DownloaderClass,
    DownloaderFactory,
    RemoteSession,
    current_downloader_factory,
)
from ._file import FileDownloader
from ._http import HttpDownloader
from ._retry import RateLimiter, RetrySettings, log_download_retry, parse_retry_after
from ._validation import (
    DEFAULT_ALLOWED_DIGESTS,
    DigestingWriter,
    check_allowed_digests,
    check_expected_digests,
)

__all__ = [
    "DEFAULT_ALLOWED_DIGESTS",
    "BaseDownloader",
    "DigestingWriter",
    "DownloadResult",
    "DownloaderClass",
    "DownloaderFactory",
    "FileDownloader",
    "HttpDownloader",
    "RateLimiter",
    "RemoteSession",
    "RetrySettings",
    "check_allowed_digests",
    "check_expected_digests",
    "current_downloader_factory",
    "log_download_retry",
    "parse_retry_after",
]
