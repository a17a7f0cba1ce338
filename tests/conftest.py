"""Every async test runs on asyncio and on trio. Hypothesis never times a test."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.errors import StopTest

# Speed targets live in benchmarks, never in tests: Hypothesis's deadline (200 ms an
# example) and its too_slow health check (slow data generation) are timed checks that a
# loaded machine, or the suite running on every core (-n auto), fails for no fault of the
# code. Tests that set their own settings inherit this profile.
settings.register_profile("stageline", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("stageline")


class _HideHypothesisStopTest(logging.Filter):
    """Drop asyncio's "Task exception was never retrieved" for Hypothesis's ``StopTest``.

    When ``data.draw`` in an async test runs out of its example's data, Hypothesis raises
    ``StopTest`` (a ``BaseException``) and handles it itself: the example is dropped,
    nothing fails. On asyncio, anyio's pytest runner task hands the exception to the test
    and then re-raises it in its own task, which nobody awaits, so asyncio logs it, with
    a traceback, when the task is collected (often at the end of the run). Only that
    record is dropped; every other error asyncio logs still shows.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], StopTest))


logging.getLogger("asyncio").addFilter(_HideHypothesisStopTest())


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per backend."""
    return str(request.param)
