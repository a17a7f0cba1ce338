"""TLS (CA bundle, client certificates, verification off) and a forward proxy with auth."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from stageline import DownloadConnectionError, DownloadError, HTTPStatusError
from stageline.download import DownloaderFactory
from stageline.models import Remote

from ._servers import ForwardProxy, LocalServer, body
from ._tls import client_certificate

pytestmark = pytest.mark.anyio

DATA = b"tls payload " * 1000


async def test_https_with_the_remote_ca_bundle(
    tls_server: LocalServer, ca_file: str, temp_dir: Path
) -> None:
    """A remote trusting the test CA through ca_cert downloads over HTTPS."""
    url = tls_server.route("/s.bin", body(DATA))
    async with DownloaderFactory() as factory:
        result = await factory.get_downloader(Remote(url=url, ca_cert=ca_file), url=url).run()
    assert result.path.read_bytes() == DATA


async def test_untrusted_certificate_fails_without_retrying(
    tls_server: LocalServer, temp_dir: Path
) -> None:
    """Without the CA, verification fails once (no retries) with advice to set ca_cert."""
    url = tls_server.route("/s.bin", body(DATA))
    async with DownloaderFactory() as factory:
        with pytest.raises(DownloadConnectionError, match="ca_cert") as info:
            await factory.get_downloader(Remote(url=url, max_retries=3), url=url).run()
    assert info.value.attempts == 1
    assert tls_server.requests == []


async def test_tls_validation_off_accepts_any_certificate(
    tls_server: LocalServer, temp_dir: Path
) -> None:
    """tls_validation=False downloads from a server whose CA is not trusted."""
    url = tls_server.route("/s.bin", body(DATA))
    async with DownloaderFactory() as factory:
        result = await factory.get_downloader(Remote(url=url, tls_validation=False), url=url).run()
    assert result.path.read_bytes() == DATA


async def test_client_certificate_and_key(
    mutual_tls_server: LocalServer, ca: trustme.CA, ca_file: str, tmp_path: Path, temp_dir: Path
) -> None:
    """A server demanding a client certificate accepts the remote's client_cert/key."""
    cert, key = client_certificate(ca, tmp_path)
    url = mutual_tls_server.route("/m.bin", body(DATA))
    async with DownloaderFactory() as factory:
        remote = Remote(url=url, ca_cert=ca_file, client_cert=str(cert), client_key=str(key))
        result = await factory.get_downloader(remote, url=url).run()
        assert result.path.read_bytes() == DATA
        without = Remote(url=url, ca_cert=ca_file, max_retries=0)
        with pytest.raises(DownloadConnectionError):
            await factory.get_downloader(without, url=url).run()
    assert len(mutual_tls_server.requests_for("/m.bin")) == 1


async def test_missing_ca_file_is_a_clear_error(temp_dir: Path, tmp_path: Path) -> None:
    """A ca_cert that does not exist fails with a message naming it."""
    missing = str(tmp_path / "nope.pem")
    remote = Remote(url="https://127.0.0.1:1/", ca_cert=missing)
    async with DownloaderFactory() as factory:
        with pytest.raises(DownloadError, match=r"nope\.pem") as info:
            await factory.get_downloader(remote, url="https://127.0.0.1:1/x").run()
    assert "cannot load its TLS files" in str(info.value)


async def test_proxy_with_credentials(server: LocalServer, temp_dir: Path) -> None:
    """Requests go through the remote's proxy with Proxy-Authorization."""
    url = server.route("/p.bin", body(DATA))
    with ForwardProxy("proxyuser", "proxypass") as proxy:
        remote = Remote(
            url=url, proxy_url=proxy.url, proxy_username="proxyuser", proxy_password="proxypass"
        )
        async with DownloaderFactory() as factory:
            result = await factory.get_downloader(remote, url=url).run()
        seen = proxy.seen
    assert result.path.read_bytes() == DATA
    assert result.headers["via"] == "1.1 test-proxy"
    assert [target for target, _ in seen] == [url]
    assert seen[0][1] is not None
    assert seen[0][1].startswith("Basic ")
    assert len(server.requests_for("/p.bin")) == 1


async def test_proxy_rejecting_credentials_is_not_retried(
    server: LocalServer, temp_dir: Path
) -> None:
    """Wrong proxy credentials: HTTP 407 at once, with advice about the proxy settings."""
    url = server.route("/p.bin", body(DATA))
    with ForwardProxy("proxyuser", "proxypass") as proxy:
        remote = Remote(
            url=url, proxy_url=proxy.url, proxy_username="proxyuser", proxy_password="wrong"
        )
        async with DownloaderFactory() as factory:
            with pytest.raises(HTTPStatusError, match="proxy_password") as info:
                await factory.get_downloader(remote, url=url).run()
        seen = proxy.seen
    assert info.value.status_code == 407
    assert len(seen) == 1
    assert server.requests == []


async def test_proxy_refusing_a_tunnel_is_not_retried(server: LocalServer, temp_dir: Path) -> None:
    """An https url through a proxy that answers the CONNECT with 407: HTTP 407 at once.

    It showed as a DownloadConnectionError retried max_retries times (4 CONNECTs), since
    httpx reports a refused tunnel as a ProxyError, not as a response.
    """
    url = f"https://127.0.0.1:{server.port}/p.bin"
    with ForwardProxy("proxyuser", "proxypass") as proxy:
        remote = Remote(
            url=url,
            proxy_url=proxy.url,
            proxy_username="proxyuser",
            proxy_password="wrong",
            max_retries=3,
        )
        async with DownloaderFactory() as factory:
            with pytest.raises(HTTPStatusError, match="proxy_password") as info:
                await factory.get_downloader(remote, url=url).run()
        seen = proxy.seen
    assert info.value.status_code == 407
    assert info.value.attempts == 1
    assert url in str(info.value)
    assert [target for target, _ in seen] == [f"127.0.0.1:{server.port}"]
    assert server.requests == []


@pytest.mark.parametrize(
    "settings",
    [{"proxy_url": "socks5://127.0.0.1:1"}, {"headers": {"X-Token": "caf\u00e9"}}],
    ids=["socks-proxy", "non-ascii-header"],
)
async def test_unusable_client_settings_are_a_download_error(
    server: LocalServer, temp_dir: Path, settings: dict[str, object]
) -> None:
    """Settings httpx cannot build a client from: DownloadError naming the remote, no retry.

    It showed as a raw ImportError (socksio is not installed) and a raw UnicodeEncodeError
    escaping run(), which also skips the mirror fallback.
    """
    url = server.route("/p.bin", body(DATA))
    remote = Remote(url=url, name="upstream", max_retries=2, **settings)  # type: ignore[arg-type]
    async with DownloaderFactory() as factory:
        with pytest.raises(DownloadError, match="remote 'upstream'") as info:
            await factory.get_downloader(remote, url=url).run()
    assert info.value.attempts == 1
    assert server.requests == []


@pytest.fixture
def tls_proxy(ca: trustme.CA) -> Iterator[ForwardProxy]:
    """An https forward proxy on 127.0.0.1 whose certificate the test CA signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with ForwardProxy("proxyuser", "proxypass", ssl_context=context) as proxy:
        yield proxy


async def test_an_https_proxy_is_verified_with_the_remote_ca_cert(
    server: LocalServer, tls_proxy: ForwardProxy, ca_file: str, temp_dir: Path
) -> None:
    """The remote's ca_cert verifies an https proxy's certificate too.

    Only the upstream servers were verified with ca_cert; the proxy's certificate was
    checked against the default bundle, so a proxy signed by the remote's own CA failed
    with a certificate error however the remote was configured.
    """
    url = server.route("/p.bin", body(DATA))
    remote = Remote(
        url=url,
        proxy_url=tls_proxy.url,
        proxy_username="proxyuser",
        proxy_password="proxypass",
        ca_cert=ca_file,
    )
    async with DownloaderFactory() as factory:
        result = await factory.get_downloader(remote, url=url).run()
    assert result.path.read_bytes() == DATA
    assert result.headers["via"] == "1.1 test-proxy"
    assert [target for target, _ in tls_proxy.seen] == [url]


async def test_an_https_proxy_the_remote_does_not_trust_is_refused(
    server: LocalServer, tls_proxy: ForwardProxy, temp_dir: Path
) -> None:
    """Without a ca_cert that signs it, the proxy fails verification once, not retried;
    with tls_validation=False it is not verified, like the remote's servers."""
    url = server.route("/p.bin", body(DATA))
    settings = {
        "url": url,
        "proxy_url": tls_proxy.url,
        "proxy_username": "proxyuser",
        "proxy_password": "proxypass",
    }
    async with DownloaderFactory() as factory:
        with pytest.raises(DownloadConnectionError, match="ca_cert") as info:
            await factory.get_downloader(Remote(**settings, max_retries=2), url=url).run()  # type: ignore[arg-type]
        unverified = Remote(**settings, tls_validation=False)  # type: ignore[arg-type]
        result = await factory.get_downloader(unverified, url=url).run()
    assert info.value.attempts == 1
    assert result.path.read_bytes() == DATA
    assert len(server.requests_for("/p.bin")) == 1
