"""Url schemes: a remote fetches only the schemes of its own url (upstream is untrusted)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from stageline import DeclarativeArtifact, DownloadError, UnsafeURLError
from stageline.download import (
    BaseDownloader,
    DownloaderFactory,
    DownloadResult,
    FileDownloader,
    HttpDownloader,
)
from stageline.models import Artifact, Remote

from ._servers import LocalServer, body, files_in

pytestmark = pytest.mark.anyio

DATA = b"upstream bytes " * 1000
SECRET = b"a local secret the sync must never read\n"


@pytest.fixture
def local_secret(tmp_path: Path) -> Path:
    """A local file a hostile upstream would like a sync to copy into storage."""
    path = tmp_path / "secret" / "id_rsa"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


@pytest.mark.parametrize(
    "form", ["file:///{path}", "FILE:///{path}", "file://localhost/{path}"], ids=str
)
async def test_an_http_remote_refuses_a_file_url(
    server: LocalServer, temp_dir: Path, local_secret: Path, form: str
) -> None:
    """A file:// url in an http remote's metadata is refused, naming url, remote and why.

    It was handed to FileDownloader, which copied the local file into the temporary area
    like any download: a hostile upstream could make a sync read this machine's files.
    """
    remote = Remote(url=server.url("/repo/"), name="upstream")
    url = form.format(path=str(local_secret).lstrip("/"))
    async with DownloaderFactory() as factory:
        with pytest.raises(UnsafeURLError) as info:
            await factory.get_downloader(remote, url=url).run()
    error = info.value
    assert isinstance(error, DownloadError)
    assert isinstance(error, ValueError)
    assert error.url == url
    message = str(error)
    for part in (url, "upstream", server.url("/repo/"), "untrusted", "local files"):
        assert part in message
    assert files_in(temp_dir) == []


async def test_an_https_remote_refuses_a_file_url_too(temp_dir: Path, local_secret: Path) -> None:
    """https remotes are in the http family: they fetch no file:// urls either."""
    remote = Remote(url="https://127.0.0.1:1/repo/")
    async with DownloaderFactory() as factory:
        with pytest.raises(UnsafeURLError, match="only http and https"):
            factory.get_downloader(remote, url=local_secret.as_uri())
    assert files_in(temp_dir) == []


async def test_an_http_remote_fetches_http_and_https(server: LocalServer, temp_dir: Path) -> None:
    """The http family: an http remote may fetch https urls (a mirror, a CDN) and back."""
    url = server.route("/a.bin", body(DATA))
    async with DownloaderFactory() as factory:
        result = await factory.get_downloader(Remote(url=server.url("/")), url=url).run()
        from_https_remote = factory.get_downloader(Remote(url="https://127.0.0.1:1/"), url=url)
        https = factory.get_downloader(Remote(url=server.url("/")), url="HTTPS://127.0.0.1:1/a")
    assert result.path.read_bytes() == DATA
    assert isinstance(from_https_remote, HttpDownloader)
    assert isinstance(https, HttpDownloader)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/a", "gopher://127.0.0.1/a", "data:,secret"])
async def test_an_http_remote_refuses_other_schemes(
    server: LocalServer, temp_dir: Path, url: str
) -> None:
    """Any scheme outside the remote's family is refused the same way."""
    async with DownloaderFactory() as factory:
        with pytest.raises(UnsafeURLError, match="untrusted"):
            factory.get_downloader(Remote(url=server.url("/")), url=url)


async def test_a_file_remote_fetches_files_but_no_http(
    server: LocalServer, temp_dir: Path, tmp_path: Path
) -> None:
    """A file:// remote reads local files, and refuses http urls before any request."""
    source = tmp_path / "repo" / "a.bin"
    source.parent.mkdir()
    source.write_bytes(DATA)
    url = server.route("/a.bin", body(DATA))
    remote = Remote(url=source.parent.as_uri())
    async with DownloaderFactory() as factory:
        downloader = factory.get_downloader(remote, url=source.as_uri())
        assert isinstance(downloader, FileDownloader)
        result = await downloader.run()
        with pytest.raises(UnsafeURLError, match="only file"):
            factory.get_downloader(remote, url=url)
    assert result.path.read_bytes() == DATA
    assert server.requests == []


async def test_a_file_mirror_in_http_metadata_is_skipped_for_the_next(
    server: LocalServer, temp_dir: Path, local_secret: Path
) -> None:
    """DeclarativeArtifact treats a refused url like a failing mirror and goes on."""
    good = server.route("/a.bin", body(DATA))
    da = DeclarativeArtifact(
        artifact=Artifact(sha256=hashlib.sha256(DATA).hexdigest()),
        urls=[local_secret.as_uri(), good],
        relative_path="a.bin",
        remote=Remote(url=server.url("/")),
    )
    async with DownloaderFactory() as factory:
        result = await da.download(factory)
    assert result.url == good
    assert result.path.read_bytes() == DATA


async def test_a_file_url_alone_in_http_metadata_fails_the_download(
    server: LocalServer, temp_dir: Path, local_secret: Path
) -> None:
    """With no other mirror, the refusal is the download's error and nothing is read."""
    da = DeclarativeArtifact(
        artifact=Artifact(size=len(SECRET)),
        url=local_secret.as_uri(),
        relative_path="id_rsa",
        remote=Remote(url=server.url("/")),
    )
    async with DownloaderFactory() as factory:
        with pytest.raises(UnsafeURLError):
            await da.download(factory)
    assert da.artifact.file is None
    assert files_in(temp_dir) == []


class _PluginDownloader(BaseDownloader):
    """A plugin's downloader for its own scheme, answering from memory."""

    def __init__(self, *, url: str, remote: Remote, factory: DownloaderFactory, **_: object):
        self.url = url

    async def run(self) -> DownloadResult:
        return DownloadResult(url=self.url, path=Path("/nonexistent"), artifact_attributes={})


async def test_a_registered_scheme_is_fetched_by_remotes_of_that_scheme(temp_dir: Path) -> None:
    """register("oci", ...): an oci:// remote fetches oci:// urls, an http remote does not."""
    async with DownloaderFactory() as factory:
        factory.register("oci", _PluginDownloader)
        downloader = factory.get_downloader(Remote(url="oci://registry/"), url="oci://registry/b")
        result = await downloader.run()
        with pytest.raises(UnsafeURLError, match="only http and https"):
            factory.get_downloader(Remote(url="https://127.0.0.1:1/"), url="oci://registry/b")
        with pytest.raises(UnsafeURLError, match="only oci"):
            factory.get_downloader(Remote(url="oci://registry/"), url="https://127.0.0.1:1/b")
    assert result.url == "oci://registry/b"


async def test_a_factory_subclass_can_widen_the_schemes(temp_dir: Path) -> None:
    """Overriding allowed_schemes lets an https remote fetch a plugin scheme too."""

    class WideningFactory(DownloaderFactory):
        def allowed_schemes(self, remote: Remote) -> frozenset[str]:
            return super().allowed_schemes(remote) | {"oci"}

    remote = Remote(url="https://127.0.0.1:1/")
    async with WideningFactory() as factory:
        factory.register("oci", _PluginDownloader)
        assert factory.allowed_schemes(remote) == {"http", "https", "oci"}
        result = await factory.get_downloader(remote, url="oci://registry/b").run()
    assert result.url == "oci://registry/b"
