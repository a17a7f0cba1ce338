"""Fixtures for the download tests: a scripted server, a private temporary area, no backoff."""

from __future__ import annotations

import gc
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import stamina
import trustme

from stageline.storage import use_temp_dir

from ._servers import LocalServer, refusing_port, running


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


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A certificate authority made for these tests."""
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    """The test CA's certificate as a PEM file, for a remote's ca_cert."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[LocalServer]:
    """An HTTPS server on 127.0.0.1 whose certificate the test CA signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with running(LocalServer(ssl_context=context)) as srv:
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
