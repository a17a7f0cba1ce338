"""Secrets never show: passwords, proxy credentials and credentials inside urls are masked
in error messages, reprs and notes, as httpx masks them (``user:[secure]@host``)."""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path

import pytest

from stageline import (
    DeclarativeArtifact,
    DigestMismatch,
    DownloadConnectionError,
    DownloadError,
    HTTPStatusError,
    UnsafeURLError,
    redact_url,
)
from stageline.download import DownloaderFactory, DownloadResult
from stageline.models import Artifact, Remote

from ._servers import LocalServer, body, status

pytestmark = pytest.mark.anyio

DATA = b"secret-guarded " * 100
SECRETS = ("urlsecret", "proxysecret", "pwsecret", "ppsecret", "hdrsecret", "tokensecret")


def _shows_no_secret(text: str) -> bool:
    return not any(secret in text for secret in SECRETS)


def _everything_shown(error: BaseException) -> str:
    """What a traceback or a log of ``error`` shows of stageline's own making."""
    notes = getattr(error, "__notes__", [])
    return "\n".join([str(error), repr(error), str(getattr(error, "url", "")), *notes])


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://alice:urlsecret@example.org/x", "https://alice:[secure]@example.org/x"),
        ("https://tokensecret@example.org/x", "https://[secure]@example.org/x"),
        ("http://a:b@c:urlsecret@h:8080/p?q#f", "http://a:[secure]@h:8080/p?q#f"),
        ("HTTP://u:urlsecret@[::1]:80/", "HTTP://u:[secure]@[::1]:80/"),
        ("//u:urlsecret@host/x", "//u:[secure]@host/x"),
        ("https://example.org/a@b", "https://example.org/a@b"),
        ("file:///srv/a@b", "file:///srv/a@b"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url_masks_userinfo_like_httpx(url: str, shown: str) -> None:
    """A password (or a lone username, often a token) becomes [secure]; the rest stays."""
    assert redact_url(url) == shown
    assert redact_url(shown) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://b.s3.amazonaws.com/f?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc1&X-Amz-Expires=60",
            "https://b.s3.amazonaws.com/f?X-Amz-Credential=[secure]&X-Amz-Signature=[secure]&X-Amz-Expires=60",
        ),
        (
            "https://a.blob.core.windows.net/c/f?sv=2021&sp=r&sig=tokensecret#top",
            "https://a.blob.core.windows.net/c/f?sv=2021&sp=r&sig=[secure]#top",
        ),
        ("https://h/p?access_token=tokensecret", "https://h/p?access_token=[secure]"),
        ("https://h/p?API-KEY=tokensecret&v=2", "https://h/p?API-KEY=[secure]&v=2"),
        ("https://h/p?__gda__=1_tokensecret", "https://h/p?__gda__=[secure]"),
        ("https://h/p?api%5Fkey=tokensecret", "https://h/p?api%5Fkey=[secure]"),
        ("https://u:urlsecret@h/p?token=t", "https://u:[secure]@h/p?token=[secure]"),
        # Names that only contain such a word inside another word stay as they are.
        ("https://h/p?monkey=1&tokens=2&keys=3", "https://h/p?monkey=1&tokens=2&keys=3"),
        ("https://h/p?token=&key&v=1", "https://h/p?token=&key&v=1"),
        ("https://h/path/token=x", "https://h/path/token=x"),
    ],
)
def test_redact_url_masks_secret_query_parameters(url: str, shown: str) -> None:
    """Signed urls carry their secret in the query: a parameter named like a token, key,
    signature or credential shows [secure] instead of its value; the rest stays."""
    assert redact_url(url) == shown
    assert redact_url(shown) == shown


def test_a_remote_repr_shows_no_secret() -> None:
    """repr(remote) masks credentials in url and proxy_url, and header values.

    The url and proxy_url were shown as given, user:password included, and header
    values (often an API key) too; only password and proxy_password were left out.
    """
    remote = Remote(
        url="https://alice:urlsecret@example.org/repo/",
        name="upstream",
        username="alice",
        password="pwsecret",
        proxy_url="http://bob:proxysecret@proxy.example:3128",
        proxy_username="bob",
        proxy_password="ppsecret",
        headers={"X-Api-Key": "hdrsecret"},
    )
    shown = repr(remote)
    assert _shows_no_secret(shown), shown
    assert "https://alice:[secure]@example.org/repo/" in shown
    assert "http://bob:[secure]@proxy.example:3128" in shown
    assert "X-Api-Key" in shown
    assert "upstream" in shown


async def test_errors_for_a_url_with_credentials_mask_them(
    server: LocalServer, temp_dir: Path, refused_port: int
) -> None:
    """A 404, a digest mismatch and a refused connection name the url without its password.

    The url was put into every message as given, user:password included.
    """
    server.route("/missing", status(404))
    server.route("/a.bin", body(DATA))
    base = f"http://alice:urlsecret@127.0.0.1:{server.port}"
    refused = f"http://alice:urlsecret@127.0.0.1:{refused_port}/x"
    remote = Remote(url=f"{base}/", max_retries=0)
    errors: list[DownloadError] = []
    async with DownloaderFactory() as factory:
        with pytest.raises(HTTPStatusError) as missing:
            await factory.get_downloader(remote, url=f"{base}/missing").run()
        with pytest.raises(DigestMismatch) as mismatch:
            await factory.get_downloader(
                remote, url=f"{base}/a.bin", expected_digests={"sha256": "0" * 64}
            ).run()
        with pytest.raises(DownloadConnectionError) as connection:
            await factory.get_downloader(Remote(url=refused, max_retries=0), url=refused).run()
        errors += [missing.value, mismatch.value, connection.value]
    for error in errors:
        shown = _everything_shown(error)
        assert _shows_no_secret(shown), shown
        assert "alice:[secure]@127.0.0.1" in shown
    assert server.requests_for("/missing")[0].headers["Authorization"].startswith("Basic ")


async def test_a_refused_scheme_masks_the_remote_url(temp_dir: Path, tmp_path: Path) -> None:
    """The scheme refusal names the remote by its url, without the url's password."""
    remote = Remote(url="https://alice:urlsecret@127.0.0.1:1/repo/")
    async with DownloaderFactory() as factory:
        with pytest.raises(UnsafeURLError) as info:
            factory.get_downloader(remote, url=(tmp_path / "x").as_uri())
    shown = _everything_shown(info.value)
    assert _shows_no_secret(shown), shown
    assert "https://alice:[secure]@127.0.0.1:1/repo/" in shown


async def test_proxy_and_tls_failures_mask_credentials(
    temp_dir: Path, tmp_path: Path, refused_port: int
) -> None:
    """An unusable proxy url, an unreachable proxy and missing TLS files show no secret.

    The unusable proxy_url was quoted whole, credentials included, and the TLS error
    named the remote by its url, password included.
    """
    url = "http://127.0.0.1:1/x"
    proxies = {
        "malformed": "http://bob:proxysecret@127.0.0.1:notaport",
        "unreachable": f"http://bob:proxysecret@127.0.0.1:{refused_port}",
    }
    shown: list[str] = []
    async with DownloaderFactory() as factory:
        for proxy_url in proxies.values():
            remote = Remote(url=url, proxy_url=proxy_url, max_retries=0)
            with pytest.raises(DownloadError) as info:
                await factory.get_downloader(remote, url=url).run()
            shown.append(_everything_shown(info.value))
        tls = Remote(url="https://alice:urlsecret@127.0.0.1:1/", ca_cert=str(tmp_path / "none.pem"))
        with pytest.raises(DownloadError, match="TLS files") as info:
            await factory.get_downloader(tls, url="https://127.0.0.1:1/x").run()
        shown.append(_everything_shown(info.value))
    for text in shown:
        assert _shows_no_secret(text), text
    assert "bob:[secure]@127.0.0.1:notaport" in shown[0]


async def test_mirror_notes_and_results_mask_credentials(
    server: LocalServer, temp_dir: Path
) -> None:
    """The notes about failed mirrors and a result's repr show no url password."""
    server.route("/m1", status(404))
    server.route("/m2", body(DATA))
    base = f"http://alice:urlsecret@127.0.0.1:{server.port}"
    da = DeclarativeArtifact(
        artifact=Artifact(sha256=hashlib.sha256(b"other").hexdigest()),
        urls=[f"{base}/m1", f"{base}/m2"],
        relative_path="a",
        remote=Remote(url=f"{base}/", max_retries=0),
    )
    async with DownloaderFactory() as factory:
        with pytest.raises(DigestMismatch) as info:
            await da.download(factory)
        result = await factory.get_downloader(da.remote, url=f"{base}/m2").run()  # type: ignore[arg-type]
    shown = _everything_shown(info.value)
    assert _shows_no_secret(shown), shown
    assert "alice:[secure]@" in info.value.__notes__[0]
    assert isinstance(result, DownloadResult)
    assert _shows_no_secret(repr(result))
    assert result.url == f"{base}/m2"  # the result itself keeps the url it was asked for


async def test_no_log_record_shows_a_url_password(
    server: LocalServer, temp_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A url's credentials authenticate the request but appear in no log record.

    httpx logs every request at INFO with its url as given: "HTTP Request: GET
    http://alice:urlsecret@…" reached the logs of any program logging at INFO.
    """
    server.route("/a.bin", body(DATA))
    url = f"http://alice:urlsecret@127.0.0.1:{server.port}/a.bin"
    with caplog.at_level(logging.DEBUG):
        async with DownloaderFactory() as factory:
            result = await factory.get_downloader(Remote(url=url), url=url).run()
    shown = [record.getMessage() for record in caplog.records]
    assert any(f"127.0.0.1:{server.port}/a.bin" in message for message in shown)
    assert [message for message in shown if not _shows_no_secret(message)] == []
    (request,) = server.requests_for("/a.bin")
    expected = "Basic " + base64.b64encode(b"alice:urlsecret").decode()
    assert request.headers["Authorization"] == expected
    assert result.url == url
