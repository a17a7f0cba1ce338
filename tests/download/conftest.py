"""Fixtures for the download tests: a scripted server, a private temporary area, no backoff,
and the TLS ones of ``_tls``."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
import stamina

from stageline.storage import use_temp_dir

from ._servers import LocalServer, refusing_port, running
from ._tls import ca, ca_file, mutual_tls_server, tls_server  # noqa: F401  (found by name)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A scripted HTTP server on 127.0.0.1, stopped after the test."""
    with running(LocalServer()) as srv:
        yield srv


@pytest.fixture
def other_server() -> Iterator[LocalServer]:
    """A second scripted HTTP server on 127.0.0.1: another port, so another origin."""
    with running(LocalServer()) as srv:
        yield srv


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections during the test (see refusing_port)."""
    with refusing_port() as port:
        yield port


@pytest.fixture
def temp_dir(tmp_path: Path) -> Iterator[Path]:
    """The temporary area downloads write to, private to the test."""
    path = tmp_path / "downloads"
    path.mkdir()
    with use_temp_dir(path):
        yield path


@pytest.fixture(autouse=True)
def no_backoff() -> Iterator[None]:
    """stamina's testing mode: retries keep their number but wait zero seconds.

    Tests that measure a wait turn it off themselves.
    """
    with stamina.set_testing(True, attempts=1_000, cap=True):
        yield


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after each test, so that an unclosed socket fails the test that leaked it."""
    yield
    gc.collect()
