"""``stageline sync`` over HTTPS: --ca-cert, a client certificate, --no-verify-tls."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from ..download._servers import LocalServer, running
from ..plugins._support import serve_directory, write_repository
from ._support import one_line_error, stageline, sync_json


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The home folder the commands use."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def mutual_tls_server(ca: trustme.CA) -> Iterator[LocalServer]:
    """An HTTPS server that also demands a client certificate signed by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    context.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(context)
    with running(LocalServer(ssl_context=context)) as server:
        yield server


def test_ca_and_client_certificate_options_reach_the_remote(
    mutual_tls_server: LocalServer, ca: trustme.CA, ca_file: str, tmp_path: Path, home: Path
) -> None:
    """Untrusted, the sync fails saying to set the CA; with --ca-cert and the client
    certificate it syncs."""
    write_repository(tmp_path / "repo", {"a.txt": b"over tls"})
    url = serve_directory(mutual_tls_server, tmp_path / "repo")
    leaf = ca.issue_cert("stageline-client")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    untrusted = stageline("sync", url, "-r", "files", "--max-retries", "0", home=home)
    assert "ca_cert" in one_line_error(untrusted)
    summary = sync_json(
        url, home, "--ca-cert", ca_file, "--client-cert", str(cert), "--client-key", str(key)
    )
    assert (summary["version"], summary["downloaded_files"]) == (1, 1)


def test_no_verify_tls_accepts_an_untrusted_certificate(
    tls_server: LocalServer, tmp_path: Path, home: Path
) -> None:
    """--no-verify-tls syncs from a server whose CA is not trusted."""
    write_repository(tmp_path / "repo", {"a.txt": b"unverified"})
    url = serve_directory(tls_server, tmp_path / "repo")
    summary = sync_json(url, home, "--no-verify-tls")
    assert summary["content_count"] == 1
