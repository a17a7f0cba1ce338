"""Retry decisions, Retry-After parsing and the rate limiter, without a network."""

from __future__ import annotations

import email.utils

import anyio
import pytest

from stageline import (
    DigestMismatch,
    DownloadConnectionError,
    DownloadTimeout,
    ForbiddenDigestError,
    HTTPStatusError,
    SizeMismatch,
)
from stageline.download import RateLimiter, RetrySettings, parse_retry_after
from stageline.download._retry import make_backoff_hook

URL = "http://127.0.0.1/x"


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    """Both Retry-After forms give a delay in seconds; garbage gives None."""
    assert parse_retry_after("7") == 7.0
    now = 1_000_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == 30.0
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_retry_after_accepts_every_http_date_format() -> None:
    """RFC 9110 makes recipients accept all three HTTP-date forms, and they are all GMT.

    The asctime form (and a date with the zone "-0000") carries no zone marker, so Python
    parses it to a naive datetime; it was ignored, and the server's delay with it.
    """
    now = 784_111_000.0  # 1994-11-06 08:33:20 GMT, 777 s before the dates below
    for value in (
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",  # obsolete asctime
        "Sun, 06 Nov 1994 08:49:37 -0000",
    ):
        assert parse_retry_after(value, now=now) == 777.0, value


def test_retry_after_seconds_are_ascii_digits_only() -> None:
    """delay-seconds is 1*DIGIT (ASCII); other Unicode digits are garbage, never a crash.

    A superscript digit passed ``str.isdigit()`` and then made ``float()`` raise a
    ValueError that escaped ``check_response`` and ``run()`` untranslated.
    """
    for garbage in ("\u00b2", "\u0663", "\uff13", "1.5", "-3", "+3", "", "3 s"):
        assert parse_retry_after(garbage) is None, garbage
    assert parse_retry_after(" 3 ") == 3.0


def test_which_errors_are_retried() -> None:
    """Transient failures and 429/5xx are retried; other 4xx and refusals are not."""
    hook = make_backoff_hook(RetrySettings(retry_after_max=60))

    def status(code: int, retry_after: float | None = None) -> HTTPStatusError:
        return HTTPStatusError("x", url=URL, status_code=code, retry_after=retry_after)

    assert hook(status(500)) is True
    assert hook(status(503)) is True
    assert hook(status(429)) is True
    assert hook(status(429, retry_after=5)) == 5
    assert hook(status(503, retry_after=600)) == 60  # capped
    for code in (400, 401, 403, 404, 407, 410):
        assert hook(status(code)) is False
    assert hook(DownloadTimeout("x", url=URL)) is True
    assert hook(DownloadConnectionError("x", url=URL)) is True
    assert hook(DigestMismatch("x", url=URL, algorithm="sha256", expected="a", actual="b"))
    assert hook(SizeMismatch("x", url=URL, expected=1, actual=2)) is True
    assert hook(ForbiddenDigestError("x", url=URL)) is False
    assert hook(ValueError("x")) is False


def test_retry_settings_validate() -> None:
    """Negative waits are refused with the field's name."""
    with pytest.raises(ValueError, match="wait_initial"):
        RetrySettings(wait_initial=-1)


@pytest.mark.anyio
async def test_rate_limiter_spaces_starts() -> None:
    """Six acquisitions at 50/s take at least 5/50 s."""
    limiter = RateLimiter(50)
    started = anyio.current_time()
    for _ in range(6):
        await limiter.wait()
    assert anyio.current_time() - started >= 5 / 50


@pytest.mark.anyio
async def test_rate_limiter_gives_a_cancelled_waiters_start_back() -> None:
    """Waiters cancelled before their start do not hold back the next caller.

    Each waiter reserved a start time and kept it when cancelled: at 2/s, with five
    waiters cancelled, the next caller waited 3 s instead of the 0.5 s the rate asks.
    No wall-clock bound from above: the next caller must start before a sleep of three
    intervals begun after it (timers fire in deadline order whatever the load), and no
    sooner than one interval after the first start.
    """
    limiter = RateLimiter(2)
    order: list[str] = []
    next_start: list[float] = []

    async def next_caller() -> None:
        await limiter.wait()
        next_start.append(anyio.current_time())
        order.append("next caller")

    async def three_intervals() -> None:
        await anyio.sleep(3 / limiter.rate)
        order.append("three intervals")

    with anyio.fail_after(10):
        await limiter.wait()  # the first start is free
        started = anyio.current_time()
        async with anyio.create_task_group() as waiters:
            for _ in range(5):
                waiters.start_soon(limiter.wait)
            await anyio.wait_all_tasks_blocked()  # one sleeping, four queued
            waiters.cancel_scope.cancel()
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(next_caller)
            task_group.start_soon(three_intervals)
    assert order == ["next caller", "three intervals"]
    assert next_start[0] - started >= 0.4  # the rate still holds


def test_rate_limiter_refuses_a_bad_rate() -> None:
    """A rate of zero is refused."""
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(0)
