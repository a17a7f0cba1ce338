"""What a download stage does when a unit's files cannot be fetched: fail, or skip it."""

from __future__ import annotations

import logging
from typing import Literal, get_args

import attrs

from .._exceptions import DownloadError, ForbiddenDigestError, StageConfigurationError
from ..models import Content

__all__ = ["DownloadFailurePolicy", "OnError", "SkippedUnit"]

logger = logging.getLogger("stageline.sync")

#: ``"fail"``: the first failed download fails the sync; ``"skip"``: the unit is left out.
OnError = Literal["fail", "skip"]


@attrs.frozen(kw_only=True)
class SkippedUnit:
    """A unit left out of a sync because a file of it could not be downloaded.

    Attributes:
        content: the unit, as the first stage declared it (or as it was saved).
        urls: every url its undownloaded files were to be fetched from (mirrors included).
        error: the download error, after the remote's retries; its message names the url
            that failed last, and its notes how earlier mirrors failed.
    """

    content: Content
    urls: tuple[str, ...]
    error: DownloadError


class DownloadFailurePolicy:
    """Decides whether a failed download fails the sync or leaves its unit out.

    With ``on_error="fail"`` (the default) the first failed download fails the sync with
    that error. With ``on_error="skip"`` a unit whose file cannot be fetched (a
    :class:`~stageline.DownloadError` once the remote's retries are spent) is recorded in
    :attr:`skipped` and left out of the new version, and the sync goes on; once more
    than ``max_skipped`` units were skipped, the next failure fails the sync as with
    ``"fail"`` (with a note saying the cap was reached). A
    :class:`~stageline.ForbiddenDigestError` is never skipped: it is a configuration
    problem that every unit would share.

    One policy is shared by the download stages of one sync; :class:`DeclarativeVersion
    <stageline.DeclarativeVersion>` makes it from its ``on_error`` and ``max_skipped``.

    Args:
        on_error: ``"fail"`` or ``"skip"``.
        max_skipped: with ``"skip"``, at most this many units are skipped (None: no cap).

    Raises:
        StageConfigurationError: (a ``ValueError``) ``on_error`` is not one of the two,
            or ``max_skipped`` is not None or an int >= 0.
    """

    def __init__(self, on_error: OnError = "fail", *, max_skipped: int | None = None) -> None:
        if on_error not in get_args(OnError):
            raise StageConfigurationError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
        if max_skipped is not None and (
            isinstance(max_skipped, bool) or not isinstance(max_skipped, int) or max_skipped < 0
        ):
            raise StageConfigurationError(
                f"max_skipped must be None or an int >= 0, got {max_skipped!r}"
            )
        self.on_error: OnError = on_error
        self.max_skipped = max_skipped
        self._skipped: list[SkippedUnit] = []

    def __repr__(self) -> str:
        return (
            f"DownloadFailurePolicy({self.on_error!r}, max_skipped={self.max_skipped!r}, "
            f"skipped={len(self._skipped)})"
        )

    @property
    def skipped(self) -> list[SkippedUnit]:
        """Every unit skipped so far, in the order their downloads failed."""
        return list(self._skipped)

    def skip(self, content: Content, urls: tuple[str, ...], error: Exception) -> bool:
        """Record a failed unit and say whether the sync may go on without it.

        Args:
            content: the unit whose download failed.
            urls: the urls its files were to be fetched from.
            error: what the download raised.

        Returns:
            True when the unit is skipped (recorded in :attr:`skipped`); False when the
            error must fail the sync: the policy is ``"fail"``, the error is not a
            skippable download error, or the cap is reached (a note on ``error`` says so).
        """
        if (
            self.on_error != "skip"
            or not isinstance(error, DownloadError)
            or isinstance(error, ForbiddenDigestError)
        ):
            return False
        if self.max_skipped is not None and len(self._skipped) >= self.max_skipped:
            error.add_note(
                f"{len(self._skipped)} units were skipped already and max_skipped is "
                f"{self.max_skipped}, so this failure fails the sync"
            )
            return False
        self._skipped.append(SkippedUnit(content=content, urls=urls, error=error))
        logger.warning(
            "skipping %s %r: %s: %s",
            content.type_name,
            content.natural_key(),
            type(error).__name__,
            error,
        )
        return True
