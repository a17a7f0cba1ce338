"""Credentials stay at their origin: headers and basic auth do not follow a redirect away."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from stageline.download import DownloaderFactory, HttpDownloader
from stageline.models import Remote

from ._servers import LocalServer, Recorded, body, redirect

pytestmark = pytest.mark.anyio

DATA = b"redirected " * 1000
BASIC = "Basic " + base64.b64encode(b"alice:s3cret").decode()

#: What the remote, the download and a plugin's build_request add, all of them secrets.
SECRETS = {"X-Api-Key": "remote-key", "X-Call-Token": "call-token", "Authorization": BASIC}


class _TokenDownloader(HttpDownloader):
    """A plugin downloader adding its own token header in build_request."""

    def build_request(self, client: httpx.AsyncClient) -> httpx.Request:
        request = super().build_request(client)
        request.headers["X-Plugin-Token"] = "plugin-token"
        return request


def _remote(server: LocalServer, **settings: object) -> Remote:
    return Remote(
        url=server.url("/"),
        headers={"X-Api-Key": "remote-key"},
        username="alice",
        password="s3cret",
        **settings,  # type: ignore[arg-type]
    )


async def _download(remote: Remote, url: str) -> None:
    async with DownloaderFactory() as factory:
        factory.register("http", _TokenDownloader)
        factory.register("https", _TokenDownloader)
        result = await factory.get_downloader(
            remote, url=url, headers={"X-Call-Token": "call-token"}
        ).run()
    assert result.path.read_bytes() == DATA


def _carries_every_secret(request: Recorded) -> bool:
    headers = {name.lower(): value for name, value in request.headers.items()}
    expected = {**SECRETS, "X-Plugin-Token": "plugin-token"}
    return all(headers.get(name.lower()) == value for name, value in expected.items())


def _secrets_in(request: Recorded) -> list[str]:
    names = {name.lower() for name in request.headers}
    return sorted(name for name in [*SECRETS, "X-Plugin-Token"] if name.lower() in names)


async def test_a_redirect_to_another_origin_carries_no_credentials(
    server: LocalServer, other_server: LocalServer, temp_dir: Path
) -> None:
    """Custom headers, per-download and plugin headers and basic auth stay at the origin.

    httpx drops only Authorization on the way to another origin: the remote's headers
    (an API key), the download's own and a plugin's token went to whatever host the
    upstream redirected to.
    """
    target = other_server.route("/file", body(DATA))
    url = server.route("/file", redirect(target))
    await _download(_remote(server), url)
    (first,) = server.requests_for("/file")
    (moved,) = other_server.requests_for("/file")
    assert _carries_every_secret(first)
    assert _secrets_in(moved) == []
    assert moved.headers["User-Agent"].startswith("stageline/")
    assert moved.headers["Accept-Encoding"] == "identity"


async def test_a_redirect_within_the_origin_keeps_the_credentials(
    server: LocalServer, temp_dir: Path
) -> None:
    """Same scheme, host and port: the redirected request is authenticated as the first."""
    target = server.route("/real", body(DATA))
    url = server.route("/alias", redirect(target))
    await _download(_remote(server), url)
    (moved,) = server.requests_for("/real")
    assert _carries_every_secret(moved)


async def test_an_https_to_http_downgrade_carries_no_credentials(
    tls_server: LocalServer, other_server: LocalServer, ca_file: str, temp_dir: Path
) -> None:
    """A redirect from https to plain http never exposes the credentials on the wire."""
    target = other_server.route("/file", body(DATA))
    url = tls_server.route("/file", redirect(target))
    await _download(_remote(tls_server, ca_cert=ca_file), url)
    (first,) = tls_server.requests_for("/file")
    (moved,) = other_server.requests_for("/file")
    assert _carries_every_secret(first)
    assert _secrets_in(moved) == []


async def test_credentials_do_not_come_back_with_a_redirect_home(
    server: LocalServer, other_server: LocalServer, temp_dir: Path
) -> None:
    """Once a download left its origin, a redirect back there is not authenticated."""
    home = server.route("/final", body(DATA))
    away = other_server.route("/bounce", redirect(home))
    url = server.route("/start", redirect(away))
    await _download(_remote(server), url)
    (back,) = server.requests_for("/final")
    assert _secrets_in(back) == []


async def test_a_remote_can_opt_in_to_sending_credentials_on_redirect(
    server: LocalServer, other_server: LocalServer, temp_dir: Path
) -> None:
    """send_credentials_on_redirect=True: every redirect target gets them (basic auth too)."""
    target = other_server.route("/file", body(DATA))
    url = server.route("/file", redirect(target))
    await _download(_remote(server, send_credentials_on_redirect=True), url)
    (moved,) = other_server.requests_for("/file")
    assert _carries_every_secret(moved)


def test_the_opt_in_is_off_by_default_and_must_be_a_bool() -> None:
    """A remote keeps credentials at its origin unless told otherwise, in so many words."""
    assert Remote(url="https://example.org/").send_credentials_on_redirect is False
    with pytest.raises(ValueError, match="send_credentials_on_redirect"):
        Remote(url="https://example.org/", send_credentials_on_redirect="yes")  # type: ignore[arg-type]
