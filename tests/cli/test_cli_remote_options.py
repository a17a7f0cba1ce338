"""``stageline sync`` with the remote's connection options: TLS (--ca-cert, a client
certificate, --no-verify-tls) and a proxy."""

from __future__ import annotations

from pathlib import Path

import trustme

from ..download._servers import ForwardProxy, LocalServer
from ..download._tls import client_certificate
from ..plugins._support import serve_directory, write_repository
from ._support import environment, one_line_error, stageline, sync_json


def test_ca_and_client_certificate_options_reach_the_remote(
    mutual_tls_server: LocalServer, ca: trustme.CA, ca_file: str, tmp_path: Path, home: Path
) -> None:
    """Untrusted, the sync fails saying to set the CA; with --ca-cert and the client
    certificate it syncs."""
    write_repository(tmp_path / "repo", {"a.txt": b"over tls"})
    url = serve_directory(mutual_tls_server, tmp_path / "repo")
    cert, key = client_certificate(ca, tmp_path)
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
