"""Downloads: validated, retried, rate-limited transfers over HTTP(S) and ``file://``."""

from ._base import BaseDownloader, DownloadResult

__all__ = ["BaseDownloader", "DownloadResult"]
