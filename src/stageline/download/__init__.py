"""Downloads: validated, retried, rate-limited transfers over HTTP(S) and ``file://``.

``Remote.get_downloader(url=..., expected_digests=..., expected_size=...)`` returns a
downloader; ``await downloader.run()`` returns a :class:`DownloadResult`. Open a
:class:`DownloaderFactory` around a sync to share one connection pool per remote and to
close them all at the end. See ``docs/downloads.md``.
"""

from ._base import BaseDownloader, DownloadResult
from ._factory import DownloaderClass, DownloaderFactory, RemoteSession, downloader_factory_for
from ._file import FileDownloader
from ._http import HttpDownloader
from ._retry import RateLimiter, RetrySettings, parse_retry_after
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
    "downloader_factory_for",
    "parse_retry_after",
]
