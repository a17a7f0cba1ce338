"""``Remote`` with the asyncio era's ``get_downloader(url=...)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from stageline import InvalidValueError
from stageline.download import BaseDownloader, current_downloader_factory
from stageline.models import Remote as NativeRemote

__all__ = ["Remote"]


@attrs.define(eq=False, kw_only=True)
class Remote(NativeRemote):
    """:class:`stageline.models.Remote` with ``get_downloader``, as plugins call it.

    A first stage ported from the asyncio era downloads its metadata with
    ``downloader = self.remote.get_downloader(url=...)`` and ``await downloader.run()``;
    with this class as its remote (or as the base of the plugin's remote class) that
    code is unchanged. The downloader comes from the downloader factory open in context:
    inside a sync, the sync's own (its connection pools, limits and temporary area).
    Subclass it and override ``get_downloader`` to substitute a downloader per remote.
    """

    def get_downloader(
        self,
        url: str | None = None,
        *,
        remote_artifact: Any = None,
        expected_digests: Mapping[str, str] | None = None,
        expected_size: int | None = None,
    ) -> BaseDownloader:
        """A downloader for ``url`` (or ``remote_artifact.url``) with this remote's settings.

        Args:
            url: what to download.
            remote_artifact: instead of ``url``: anything with a ``url`` (and optionally
                ``size`` and digests, used as expectations when none are given).
            expected_digests: digests the bytes must have (kind -> hex).
            expected_size: the size the body must have.

        Returns:
            A downloader; ``await downloader.run()`` returns a
            :class:`~stageline.download.DownloadResult` (``path``, ``url``,
            ``artifact_attributes``).

        Raises:
            InvalidValueError: (a ``ValueError``) neither ``url`` nor ``remote_artifact``.
            UnsafeURLError: a url this remote may not fetch (see ``docs/downloads.md``).
            ForbiddenDigestError: an expected digest of a kind the factory refuses.
        """
        if remote_artifact is not None:
            url = url or remote_artifact.url
            if expected_size is None:
                expected_size = getattr(remote_artifact, "size", None)
            if expected_digests is None:
                digests = getattr(remote_artifact, "digests", None)
                expected_digests = digests() if callable(digests) else None
        if not url:
            raise InvalidValueError(
                f"Remote.get_downloader() needs url=... (or remote_artifact=...); remote "
                f"{self.name!r} got neither"
            )
        return current_downloader_factory().get_downloader(
            self, url=url, expected_digests=expected_digests, expected_size=expected_size
        )
