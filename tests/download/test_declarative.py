"""DeclarativeArtifact.download(): expectations from the artifact, mirrors in order."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from stageline import (
    DeclarativeArtifact,
    DigestMismatch,
    DownloaderFactoryError,
    DownloadError,
    ForbiddenDigestError,
    HTTPStatusError,
)
from stageline.download import BaseDownloader, DownloaderFactory, DownloadResult
from stageline.models import Artifact, Remote

from ._servers import LocalServer, body, status

pytestmark = pytest.mark.anyio

DATA = b"mirrored " * 5000
SHA256 = hashlib.sha256(DATA).hexdigest()


async def test_first_mirror_failing_falls_back_to_the_next(
    server: LocalServer, temp_dir: Path
) -> None:
    """A 404 on the first mirror and a good second mirror give the second's file."""
    bad = server.route("/m1/a", status(404))
    good = server.route("/m2/a", body(DATA))
    remote = Remote(url=server.url("/"))
    da = DeclarativeArtifact(
        artifact=Artifact(sha256=SHA256, size=len(DATA)),
        urls=[bad, good],
        relative_path="a",
        remote=remote,
    )
    async with DownloaderFactory() as factory:
        result = await da.download(factory)
    assert result.url == good
    assert da.artifact.file == result.path
    assert da.artifact.file.read_bytes() == DATA
    assert da.artifact.sha256 == SHA256
    assert da.artifact.sha512 == hashlib.sha512(DATA).hexdigest()
    assert da.artifact.size == len(DATA)
    assert [r.path for r in server.requests] == ["/m1/a", "/m2/a"]


async def test_all_mirrors_failing_raises_the_last_error(
    server: LocalServer, temp_dir: Path
) -> None:
    """When every mirror fails, the error of the last one is raised."""
    first = server.route("/m1/a", status(404))
    second = server.route("/m2/a", body(b"not it"))
    remote = Remote(url=server.url("/"), max_retries=0)
    da = DeclarativeArtifact(
        artifact=Artifact(sha256=SHA256), urls=[first, second], relative_path="a", remote=remote
    )
    async with DownloaderFactory() as factory:
        with pytest.raises(DigestMismatch) as info:
            await da.download(factory)
    assert info.value.url == second
    assert [r.path for r in server.requests] == ["/m1/a", "/m2/a"]
    assert da.artifact.file is None


async def test_all_mirrors_failing_tells_what_each_earlier_mirror_did(
    server: LocalServer, temp_dir: Path
) -> None:
    """The last error carries a note per earlier mirror, so an operator sees every failure.

    Only the last mirror's error was raised, and nothing said that the first answered 404.
    """
    first = server.route("/m1/a", status(404))
    second = server.route("/m2/a", status(403))
    third = server.route("/m3/a", body(b"not it"))
    remote = Remote(url=server.url("/"), max_retries=0)
    da = DeclarativeArtifact(
        artifact=Artifact(sha256=SHA256),
        urls=[first, second, third],
        relative_path="a",
        remote=remote,
    )
    async with DownloaderFactory() as factory:
        with pytest.raises(DigestMismatch) as info:
            await da.download(factory)
    notes = info.value.__notes__
    assert len(notes) == 2
    assert notes[0].startswith(f"mirror 1 of 3, {first}, failed first: HTTPStatusError: ")
    assert "HTTP 404" in notes[0]
    assert notes[1].startswith(f"mirror 2 of 3, {second}, failed too: HTTPStatusError: ")
    assert "HTTP 403" in notes[1]


async def test_one_url_failing_adds_no_note(server: LocalServer, temp_dir: Path) -> None:
    """With a single url there is nothing earlier to tell about."""
    url = server.route("/a", status(404))
    da = DeclarativeArtifact(
        artifact=Artifact(sha256=SHA256), url=url, relative_path="a", remote=Remote(url=url)
    )
    async with DownloaderFactory() as factory:
        with pytest.raises(HTTPStatusError) as info:
            await da.download(factory)
    assert not getattr(info.value, "__notes__", [])


async def test_forbidden_expectation_is_refused_before_any_request(
    server: LocalServer, temp_dir: Path
) -> None:
    """An artifact known only by md5 is refused, not downloaded unchecked."""
    url = server.route("/a", body(DATA))
    da = DeclarativeArtifact(
        artifact=Artifact(md5=hashlib.md5(DATA).hexdigest()),
        url=url,
        relative_path="a",
        remote=Remote(url=server.url("/")),
    )
    async with DownloaderFactory() as factory:
        with pytest.raises(ForbiddenDigestError):
            await da.download(factory)
    assert server.requests == []


async def test_a_mirror_no_downloader_handles_falls_back_to_the_next(
    server: LocalServer, temp_dir: Path
) -> None:
    """A mirror with an unknown scheme or a malformed url is skipped like a failing one.

    It showed as the DownloadError of get_downloader() escaping at the first mirror, so the
    good second mirror was never tried.
    """
    good = server.route("/m2/a", body(DATA))
    remote = Remote(url=server.url("/"))
    for bad in ("ftp://127.0.0.1/m1/a", "http://[::1/m1/a", "http://xn--zz/m1/a"):
        da = DeclarativeArtifact(
            artifact=Artifact(sha256=SHA256, size=len(DATA)),
            urls=[bad, good],
            relative_path="a",
            remote=remote,
        )
        async with DownloaderFactory() as factory:
            result = await da.download(factory)
        assert result.url == good
        assert da.artifact.sha256 == SHA256


async def test_a_refused_expectation_does_not_fall_back_to_the_next_mirror(
    server: LocalServer, temp_dir: Path
) -> None:
    """ForbiddenDigestError would be the same on every mirror: raised at once, no request."""
    urls = [server.route("/m1/a", body(DATA)), server.route("/m2/a", body(DATA))]
    da = DeclarativeArtifact(
        artifact=Artifact(md5=hashlib.md5(DATA).hexdigest()),
        urls=urls,
        relative_path="a",
        remote=Remote(url=server.url("/")),
    )
    async with DownloaderFactory() as factory:
        with pytest.raises(ForbiddenDigestError):
            await da.download(factory)
    assert server.requests == []


class _CannedDownloader(BaseDownloader):
    def __init__(self, path: Path, url: str) -> None:
        self.path, self.url = path, url

    async def run(self) -> DownloadResult:
        return DownloadResult(
            url=self.url, path=self.path, artifact_attributes={"size": 3, "sha256": "ab" * 32}
        )


async def test_any_factory_can_substitute_the_downloader(tmp_path: Path) -> None:
    """A plugin's own factory (anything with get_downloader) supplies the downloader."""
    canned = tmp_path / "canned"
    canned.write_bytes(b"abc")
    calls: list[dict[str, Any]] = []

    class PluginFactory:
        def get_downloader(
            self,
            remote: Remote,
            *,
            url: str,
            expected_digests: Mapping[str, str] | None = None,
            expected_size: int | None = None,
        ) -> BaseDownloader:
            calls.append({"url": url, "digests": expected_digests, "size": expected_size})
            return _CannedDownloader(canned, url)

    remote = Remote(url="plugin://x/")
    da = DeclarativeArtifact(
        artifact=Artifact(size=3), url="plugin://x/y", relative_path="y", remote=remote
    )
    result = await da.download(PluginFactory())
    assert calls == [{"url": "plugin://x/y", "digests": {}, "size": 3}]
    assert result.url == "plugin://x/y"
    assert da.artifact.file == canned
    assert da.artifact.sha256 == "ab" * 32


async def test_without_a_factory_the_one_open_in_the_context_is_used(
    server: LocalServer, temp_dir: Path
) -> None:
    """download() with no argument uses the factory of the enclosing async with block."""
    url = server.route("/a", body(DATA))
    da = DeclarativeArtifact(
        artifact=Artifact(sha256=SHA256), url=url, relative_path="a", remote=Remote(url=url)
    )
    async with DownloaderFactory() as factory:
        result = await da.download()
        session = factory.session(da.remote)  # type: ignore[arg-type]
    assert result.path.read_bytes() == DATA
    assert session.limiter.borrowed_tokens == 0
    assert da.artifact.sha256 == SHA256


async def test_without_a_factory_and_none_open_the_error_says_what_to_do(temp_dir: Path) -> None:
    """download() with no factory outside any open factory is a DownloaderFactoryError."""
    da = DeclarativeArtifact(
        artifact=Artifact(size=3),
        url="http://127.0.0.1:1/a",
        relative_path="a",
        remote=Remote(url="http://127.0.0.1:1/"),
    )
    with pytest.raises(DownloaderFactoryError, match="no DownloaderFactory is open") as info:
        await da.download()
    assert isinstance(info.value, RuntimeError)
    assert not isinstance(info.value, DownloadError)
