"""``stageline sync`` with the remote's connection options: TLS (--ca-cert, a client
certificate, --no-verify-tls) and a proxy."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from ..download._servers import ForwardProxy, LocalServer, running
from ..plugins._support import serve_directory, write_repository
from ._support import environment, one_line_error, stageline, sync_json


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The home folder the commands use."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority made for these tests."""
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    """The test CA's certificate as a PEM file, for --ca-cert."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[LocalServer]:
    """An HTTPS server on 127.0.0.1 whose certificate the test CA signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with running(LocalServer(ssl_context=context)) as server:
        yield server


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


def test_the_proxy_options_reach_the_remote(
    server: LocalServer, tmp_path: Path, home: Path
) -> None:
    """--proxy, --proxy-username and $STAGELINE_PROXY_PASSWORD send every request through it."""
    files = {"a.txt": b"alpha", "b.txt": b"bravo"}
    write_repository(tmp_path / "repo", files)
    url = serve_directory(server, tmp_path / "repo")
    with ForwardProxy("proxy-user", "proxy-pw") as proxy:
        done = stageline(
            "sync", url, "-r", "files", "--proxy", proxy.url, "--proxy-username", "proxy-user",
            "--json", home=home, env=environment(STAGELINE_PROXY_PASSWORD="proxy-pw"),
        )  # fmt: skip
        seen = [target for target, _ in proxy.seen]
    assert done.returncode == 0, done.stderr
    assert "proxy-pw" not in done.stdout + done.stderr
    assert url in seen
    assert len(seen) == 1 + len(files)
