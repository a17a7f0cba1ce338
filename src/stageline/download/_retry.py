"""When a failed try is worth another, how long to wait, how fast requests may start, and
how retries are logged."""

from __future__ import annotations

import datetime
import email.utils
import logging
import math
import ssl
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Final

import anyio
import attrs
import stamina
from stamina.instrumentation import RetryDetails, RetryHook

from .._exceptions import (
    DigestMismatch,
    DownloadConnectionError,
    DownloadError,
    DownloadTimeout,
    HTTPStatusError,
    InvalidValueError,
    SizeMismatch,
)

__all__ = [
    "RateLimiter",
    "RetrySettings",
    "log_download_retry",
    "parse_retry_after",
]

#: Where downloads log; retries are WARNING records with ``url``, ``try_number`` and
#: ``wait_seconds`` attributes.
logger: Final = logging.getLogger("stageline.download")
# A library leaves output to the program: with no logging configured, nothing is printed.
logger.addHandler(logging.NullHandler())


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise InvalidValueError(
            f"RetrySettings.{attribute.name} must be a number >= 0, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class RetrySettings:
    """How retries back off; how many there are is the remote's ``max_retries``.

    The wait before retry *n* is ``min(wait_max, wait_initial * 2 ** (n - 1) + jitter)``
    with a random jitter in ``[0, wait_jitter]`` (computed by stamina), except after a
    429 or 503 answer carrying ``Retry-After``: then the server's delay is used, capped at
    ``retry_after_max``.

    Args:
        wait_initial: seconds before the first retry (before jitter).
        wait_max: the longest exponential backoff, in seconds.
        wait_jitter: the largest random addition to a backoff, in seconds.
        retry_after_max: the longest ``Retry-After`` honoured, in seconds; longer requests
            are shortened to it.
    """

    wait_initial: float = attrs.field(default=0.5, validator=_non_negative)
    wait_max: float = attrs.field(default=30.0, validator=_non_negative)
    wait_jitter: float = attrs.field(default=1.0, validator=_non_negative)
    retry_after_max: float = attrs.field(default=120.0, validator=_non_negative)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """The delay a ``Retry-After`` header asks for, in seconds, or None if unusable.

    Both forms of RFC 9110 are understood: a number of seconds (ASCII digits) and an
    HTTP date in any of its three formats, always taken as GMT. A date in the past is 0.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        # isascii: str.isdigit() also accepts digits float() refuses ("²")
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        # The asctime format has no zone and "-0000" parses without one; an HTTP date
        # is GMT whatever its format says (RFC 9110 §5.6.7).
        when = when.replace(tzinfo=datetime.UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _caused_by_certificate_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def make_backoff_hook(settings: RetrySettings) -> Callable[[Exception], bool | float]:
    """A stamina backoff hook: False for errors not worth retrying, else True or a delay."""

    def should_retry(exc: Exception) -> bool | float:
        if isinstance(exc, HTTPStatusError):
            if exc.status_code == 429 or exc.status_code == 503:
                if exc.retry_after is not None:
                    return min(exc.retry_after, settings.retry_after_max)
                return True
            return exc.status_code >= 500
        if isinstance(exc, DownloadConnectionError):
            # A certificate the client does not trust will not become trusted by asking again.
            return not _caused_by_certificate_error(exc)
        return isinstance(exc, DownloadTimeout | DigestMismatch | SizeMismatch)

    return should_retry


class RateLimiter:
    """Lets requests start at most ``rate`` times per second, evenly spaced.

    Callers wait in turn, in the order they asked (a fair lock), and each takes the next
    start time only once it has slept until then: a caller cancelled while waiting gives
    its turn to the next one instead of leaving a gap. Works on every AnyIO backend (it
    only uses the backend's clock, sleep and lock).
    """

    def __init__(self, rate: float) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
            raise InvalidValueError(f"RateLimiter: rate must be a number > 0, got {rate!r}")
        self.rate = float(rate)
        self._interval = 1.0 / self.rate
        self._next_start = -math.inf
        self._turn = anyio.Lock()

    async def wait(self) -> None:
        """Sleep until this caller may start a request."""
        async with self._turn:  # acquiring is a checkpoint even when no one waits
            now = anyio.current_time()
            start = max(now, self._next_start)
            if start > now:
                await anyio.sleep(start - now)
            # From the planned start, not the time the sleep ended: the spacing stays
            # exact on average, and an oversleep is not added to the next caller's wait.
            self._next_start = start + self._interval


def log_download_retry(details: RetryDetails) -> None:
    """A stamina retry hook that logs a download's scheduled retry on ``stageline.download``.

    Retries caused by anything but a :class:`~stageline.DownloadError` are not its
    business. stageline adds it to stamina's hooks before a download's first retry, if
    it is missing (see ``docs/downloads.md``); list it yourself when you set your own
    hooks, so that no retry goes unlogged in between.
    """
    error = details.caused_by
    if not isinstance(error, DownloadError):
        return
    logger.warning(
        "download of %s: try %d failed (%s: %s); retrying in %.2f s",
        error.url,
        details.retry_num,
        type(error).__name__,
        error,
        details.wait_for,
        extra={"url": error.url, "try_number": details.retry_num, "wait_seconds": details.wait_for},
    )


class _SkippingDownloads:
    """One of stamina's own logging hooks, made to leave download retries alone: stageline
    logs those itself, with the url, instead of a bare ``stamina.retry_scheduled``."""

    def __init__(self, hook: RetryHook) -> None:
        self.hook = hook

    def __call__(self, details: RetryDetails) -> AbstractContextManager[None] | None:
        if isinstance(details.caused_by, DownloadError):
            return None
        return self.hook(details)


# stamina's default logging hooks (standard logging, or structlog when installed) are
# closures made in these modules.
_STAMINA_LOGGING_MODULES: Final = frozenset(
    {"stamina.instrumentation._logging", "stamina.instrumentation._structlog"}
)
_install_lock = threading.Lock()


def install_retry_logging() -> None:
    """Make sure stamina's hooks log download retries through :func:`log_download_retry`.

    Called before a download's first retry. Every hook a program set stays and keeps
    seeing download retries; stamina's own logging hooks are kept for every other retry
    but skip download retries (their bare ``stamina.retry_scheduled`` line would repeat
    ours without the url); :func:`log_download_retry` is appended. A program that later
    replaces stamina's hooks gets it appended again at the next retry: to silence it,
    configure the ``stageline.download`` logger.
    """
    if log_download_retry in stamina.instrumentation.get_on_retry_hooks():
        return
    with _install_lock:
        hooks = stamina.instrumentation.get_on_retry_hooks()
        if log_download_retry in hooks:
            return
        kept: list[RetryHook] = [
            _SkippingDownloads(hook)
            if getattr(hook, "__module__", None) in _STAMINA_LOGGING_MODULES
            else hook
            for hook in hooks
        ]
        stamina.instrumentation.set_on_retry_hooks([*kept, log_download_retry])
