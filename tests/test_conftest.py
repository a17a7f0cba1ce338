"""The suite's own set-up: what tests/conftest.py promises."""

from __future__ import annotations

import logging
import sys

from hypothesis.errors import StopTest


def _record(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        exc_info = sys.exc_info()
    return logging.LogRecord(
        "asyncio", logging.ERROR, __file__, 1, "Task exception was never retrieved", (), exc_info
    )


def test_asyncio_records_of_hypothesis_stoptest_are_dropped_and_no_others() -> None:
    logger = logging.getLogger("asyncio")
    assert not logger.filter(_record(StopTest(7)))
    assert logger.filter(_record(ValueError("a real error")))
    assert logger.filter(_record(KeyboardInterrupt()))
    plain = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "no exception", (), None)
    assert logger.filter(plain)
