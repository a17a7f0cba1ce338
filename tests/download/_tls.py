"""TLS fixtures shared by the download tests and the CLI tests: a test certificate
authority, HTTPS servers whose certificates it signed, a client certificate it issued.

A conftest or test module that needs them imports them by name (pytest finds fixtures by
name in the module that holds them)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from ._servers import LocalServer, running


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A certificate authority made for these tests."""
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    """The test CA's certificate as a PEM file, for a remote's ca_cert (--ca-cert)."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[LocalServer]:
    """An HTTPS server on 127.0.0.1 whose certificate the test CA signed."""
    with running(LocalServer(ssl_context=_server_context(ca))) as server:
        yield server


@pytest.fixture
def mutual_tls_server(ca: trustme.CA) -> Iterator[LocalServer]:
    """An HTTPS server that also demands a client certificate signed by the test CA."""
    context = _server_context(ca)
    context.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(context)
    with running(LocalServer(ssl_context=context)) as server:
        yield server


def client_certificate(ca: trustme.CA, directory: Path) -> tuple[Path, Path]:
    """Write a client certificate the test CA issued (its chain) and its key into
    ``directory``; their paths, for client_cert and client_key."""
    leaf = ca.issue_cert("stageline-client")
    cert, key = directory / "client.pem", directory / "client.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    return cert, key
