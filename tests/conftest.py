"""Every async test runs on asyncio and on trio. Hypothesis never times a test."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

# Speed targets live in benchmarks, never in tests: Hypothesis's deadline (200 ms an
# example) and its too_slow health check (slow data generation) are timed checks that a
# loaded machine, or the suite running on every core (-n auto), fails for no fault of the
# code. Tests that set their own settings inherit this profile.
settings.register_profile("stageline", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("stageline")


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per backend."""
    return str(request.param)
