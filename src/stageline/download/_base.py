"""The downloader interface every downloader implements, and what a download returns."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from .._exceptions import redact_url
from ._validation import check_expected_digests

if TYPE_CHECKING:
    from ..models import Remote
    from ._factory import DownloaderFactory

__all__ = ["BaseDownloader", "DownloadResult"]


@attrs.frozen(kw_only=True)
class DownloadResult:
    """What a finished, validated download produced.

    Attributes:
        url: the url that was downloaded (its repr masks credentials in it).
        path: the temporary file holding the bytes (in the sync's temporary area).
        artifact_attributes: ``size`` and every allowed digest of the bytes, ready to be
            passed to ``Artifact(**artifact_attributes)``.
        headers: the final response's headers, names in lower case (empty for ``file://``).
        attempts: how many tries it took (1 when the first try succeeded).
    """

    url: str = attrs.field(repr=lambda url: repr(redact_url(url)))
    path: Path
    artifact_attributes: Mapping[str, int | str]
    headers: Mapping[str, str] = attrs.field(factory=dict)
    attempts: int = 1


class BaseDownloader(abc.ABC):
    """Downloads one url to a temporary file and validates it. Subclass to write your own.

    A subclass implements :meth:`run`; a :class:`DownloaderFactory` hands out downloaders
    (``factory.get_downloader(remote, url=…)``).
    """

    @abc.abstractmethod
    async def run(self) -> DownloadResult:
        """Download, validate and return the result.

        Raises:
            DownloadError: (or a subclass) when the download fails.
        """


class _RemoteDownloader(BaseDownloader):
    """What the built-in downloaders share: a url, a remote's session and expectations.

    Raises:
        ForbiddenDigestError: when an expected digest is of a kind not allowed.
    """

    def __init__(
        self,
        *,
        url: str,
        remote: Remote,
        factory: DownloaderFactory,
        expected_digests: Mapping[str, str] | None = None,
        expected_size: int | None = None,
    ) -> None:
        self.url = url
        self.remote = remote
        self.factory = factory
        self.expected_digests = check_expected_digests(
            url, expected_digests, factory.allowed_digests
        )
        self.expected_size = expected_size
        self.session = factory.session(remote)

    @property
    def redacted_url(self) -> str:
        """:attr:`url` with its credentials masked: the form error messages name."""
        return redact_url(self.url)
