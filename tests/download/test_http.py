"""The HTTP downloader against a real server on 127.0.0.1, on asyncio and trio."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import stamina
import trustme

from stageline import (
    DigestMismatch,
    DownloadConnectionError,
    DownloaderFactoryClosed,
    DownloadError,
    DownloadTimeout,
    ForbiddenDigestError,
    HTTPStatusError,
    MalformedDigestError,
    SizeMismatch,
    StorageError,
)
from stageline.download import (
    DownloaderFactory,
    HttpDownloader,
    RetrySettings,
    current_downloader_factory,
)
from stageline.models import Remote
from stageline.storage import use_temp_dir

from ._servers import (
    LocalServer,
    body,
    chunked,
    files_in,
    hold_until_in_flight,
    redirect,
    require_basic_auth,
    stall,
    status,
    trickle,
    truncated,
)

pytestmark = pytest.mark.anyio

DATA = bytes(range(256)) * 1024  # 256 KiB
DIGESTS = {
    name: hashlib.new(name, DATA).hexdigest() for name in ("sha224", "sha256", "sha384", "sha512")
}


def remote_for(server: LocalServer, **settings: object) -> Remote:
    return Remote(url=server.url("/"), **settings)  # type: ignore[arg-type]


async def test_success_returns_file_size_and_every_allowed_digest(
    server: LocalServer, temp_dir: Path
) -> None:
    """A good download lands in the temporary area with its size and all four digests."""
    url = server.route("/a.bin", body(DATA, headers={"X-Test": "yes"}))
    remote = remote_for(server)
    async with DownloaderFactory() as factory:
        result = await factory.get_downloader(
            remote, url=url, expected_digests={"sha256": DIGESTS["sha256"]}, expected_size=len(DATA)
        ).run()
    assert result.url == url
    assert result.path.parent == temp_dir
    assert result.path.read_bytes() == DATA
    assert dict(result.artifact_attributes) == {"size": len(DATA), **DIGESTS}
    assert result.headers["x-test"] == "yes"
    assert result.attempts == 1


async def test_large_body_goes_through_the_worker_thread(
    server: LocalServer, temp_dir: Path
) -> None:
    """A body larger than a batch is hashed in batches and still validates exactly."""
    big = DATA * 12  # 3 MiB: several 256 KiB batches
    url = server.route("/big.bin", body(big))
    async with DownloaderFactory(batch_size=256 * 1024) as factory:
        result = await factory.get_downloader(
            remote_for(server),
            url=url,
            expected_digests={"sha512": hashlib.sha512(big).hexdigest()},
            expected_size=len(big),
        ).run()
    assert result.path.read_bytes() == big
    assert result.artifact_attributes["sha256"] == hashlib.sha256(big).hexdigest()


async def test_404_is_not_retried(server: LocalServer, temp_dir: Path) -> None:
    """A 404 fails at once with HTTPStatusError naming the url; no second request."""
    url = server.url("/missing")
    async with DownloaderFactory() as factory:
        with pytest.raises(HTTPStatusError) as info:
            await factory.get_downloader(remote_for(server, max_retries=3), url=url).run()
    assert info.value.status_code == 404
    assert info.value.attempts == 1
    assert url in str(info.value)
    assert len(server.requests_for("/missing")) == 1
    assert files_in(temp_dir) == []


async def test_500_500_200_succeeds_on_the_third_try(server: LocalServer, temp_dir: Path) -> None:
    """Server errors are retried; the third try's body is the result."""
    url = server.route("/flaky", status(500), status(502), body(DATA))
    async with DownloaderFactory() as factory:
        result = await factory.get_downloader(remote_for(server, max_retries=3), url=url).run()
    assert result.attempts == 3
    assert result.path.read_bytes() == DATA
    assert len(server.requests_for("/flaky")) == 3
    assert files_in(temp_dir) == [result.path]


async def test_retries_stop_at_max_retries(server: LocalServer, temp_dir: Path) -> None:
    """max_retries=2 makes three tries, and the error says so."""
    url = server.route("/down", status(503))
    async with DownloaderFactory() as factory:
        with pytest.raises(HTTPStatusError) as info:
            await factory.get_downloader(remote_for(server, max_retries=2), url=url).run()
    assert info.value.status_code == 503
    assert info.value.attempts == 3
    assert "after 3 tries" in str(info.value)
    assert len(server.requests_for("/down")) == 3


async def test_max_retries_zero_means_one_try(server: LocalServer, temp_dir: Path) -> None:
    """max_retries=0 disables retrying."""
    url = server.route("/down", status(500))
    async with DownloaderFactory() as factory:
        with pytest.raises(HTTPStatusError):
            await factory.get_downloader(remote_for(server, max_retries=0), url=url).run()
    assert len(server.requests_for("/down")) == 1


async def test_429_retry_after_is_honoured(server: LocalServer, temp_dir: Path) -> None:
    """A 429 with Retry-After: 1 waits (at least) one second before the retry."""
    waits: list[float] = []

    def record(details: stamina.instrumentation.RetryDetails) -> None:
        waits.append(details.wait_for)

    url = server.route("/busy", status(429, headers={"Retry-After": "1"}), body(DATA))
    with stamina.set_testing(False):
        stamina.instrumentation.set_on_retry_hooks([record])
        try:
            async with DownloaderFactory(
                retry=RetrySettings(wait_initial=30, wait_jitter=0)
            ) as factory:
                started = anyio.current_time()
                result = await factory.get_downloader(remote_for(server), url=url).run()
                elapsed = anyio.current_time() - started
        finally:
            stamina.instrumentation.set_on_retry_hooks(None)
    assert result.attempts == 2
    assert waits == [1.0]  # the server's delay, not the 30 s exponential backoff
    assert elapsed >= 1.0


async def test_an_unusable_retry_after_falls_back_to_the_backoff(
    server: LocalServer, temp_dir: Path
) -> None:
    """A 503 whose Retry-After is garbage (a superscript digit) is retried like any 503.

    It showed as a raw ValueError from parsing the header, escaping ``run()``: not retried,
    not a DownloadError, so no mirror was tried either.
    """
    url = server.route("/busy", status(503, headers={"Retry-After": "\u00b2"}), body(DATA))
    async with DownloaderFactory() as factory:
        result = await factory.get_downloader(remote_for(server), url=url).run()
    assert result.attempts == 2
    assert result.path.read_bytes() == DATA


async def test_retry_after_is_capped(server: LocalServer, temp_dir: Path) -> None:
    """A Retry-After longer than retry_after_max waits only retry_after_max."""
    waits: list[float] = []

    def record(details: stamina.instrumentation.RetryDetails) -> None:
        waits.append(details.wait_for)

    url = server.route("/busy", status(429, headers={"Retry-After": "3600"}), body(DATA))
    with stamina.set_testing(False):
        stamina.instrumentation.set_on_retry_hooks([record])
        try:
            async with DownloaderFactory(retry=RetrySettings(retry_after_max=0.05)) as factory:
                result = await factory.get_downloader(remote_for(server), url=url).run()
        finally:
            stamina.instrumentation.set_on_retry_hooks(None)
    assert result.attempts == 2
    assert waits == [0.05]


async def test_first_failure_gets_the_same_backoff_as_inside_stamina(
    server: LocalServer, temp_dir: Path
) -> None:
    """The first try runs outside stamina, yet its failure starts stamina's backoff at retry 1."""
    retries: list[tuple[int, float]] = []

    def record(details: stamina.instrumentation.RetryDetails) -> None:
        retries.append((details.retry_num, details.wait_for))

    url = server.route("/flaky", status(500), status(502), body(DATA))
    settings = RetrySettings(wait_initial=0.01, wait_max=1, wait_jitter=0)
    with stamina.set_testing(False):
        stamina.instrumentation.set_on_retry_hooks([record])
        try:
            async with DownloaderFactory(retry=settings) as factory:
                result = await factory.get_downloader(
                    remote_for(server, max_retries=3), url=url
                ).run()
        finally:
            stamina.instrumentation.set_on_retry_hooks(None)
    assert result.attempts == 3
    assert result.path.read_bytes() == DATA
    # Exponential from wait_initial: the failure of the try made outside stamina counts
    # as stamina's first attempt, so nothing is tried twice without a wait or skipped.
    assert retries == [(1, pytest.approx(0.01)), (2, pytest.approx(0.02))]
    assert len(server.requests_for("/flaky")) == 3
    assert files_in(temp_dir) == [result.path]


async def test_first_failure_counts_against_max_retries(
    server: LocalServer, temp_dir: Path
) -> None:
    """A failing first try plus max_retries=1 makes exactly two tries, then gives up."""
    url = server.route("/down", status(500))
    async with DownloaderFactory() as factory:
        with pytest.raises(HTTPStatusError) as info:
            await factory.get_downloader(remote_for(server, max_retries=1), url=url).run()
    assert info.value.attempts == 2
    assert "after 2 tries" in str(info.value)
    assert len(server.requests_for("/down")) == 2
    assert files_in(temp_dir) == []


async def test_stamina_deactivated_means_one_try(server: LocalServer, temp_dir: Path) -> None:
    """With stamina switched off (stamina.set_active(False)) a failed first try is final."""
    url = server.route("/down", status(500), body(DATA))
    stamina.set_active(False)
    try:
        async with DownloaderFactory() as factory:
            with pytest.raises(HTTPStatusError) as info:
                await factory.get_downloader(remote_for(server, max_retries=3), url=url).run()
    finally:
        stamina.set_active(True)
    assert info.value.attempts == 1
    assert len(server.requests_for("/down")) == 1


async def test_unusable_temporary_area_is_a_storage_error_not_retried(
    server: LocalServer, tmp_path: Path
) -> None:
    """A temporary area that cannot hold files raises StorageError after a single request."""
    not_a_directory = tmp_path / "a file"
    not_a_directory.write_bytes(b"")
    url = server.route("/a.bin", body(DATA))
    with use_temp_dir(not_a_directory / "downloads"):
        async with DownloaderFactory() as factory:
            with pytest.raises(StorageError, match="temporary"):
                await factory.get_downloader(remote_for(server, max_retries=3), url=url).run()
    assert len(server.requests_for("/a.bin")) == 1


async def test_truncated_body_is_retried(server: LocalServer, temp_dir: Path) -> None:
    """A connection closed before Content-Length bytes is retried with a fresh file."""
    url = server.route("/cut", truncated(DATA, send=1000), body(DATA))
    async with DownloaderFactory() as factory:
        result = await factory.get_downloader(
            remote_for(server), url=url, expected_size=len(DATA)
        ).run()
    assert result.attempts == 2
    assert result.path.read_bytes() == DATA
    assert files_in(temp_dir) == [result.path]


async def test_truncated_body_fails_after_the_retries(server: LocalServer, temp_dir: Path) -> None:
    """Always-truncated bodies end in DownloadConnectionError and leave no file."""
    url = server.route("/cut", truncated(DATA, send=1000))
    async with DownloaderFactory() as factory:
        with pytest.raises(DownloadConnectionError) as info:
            await factory.get_downloader(remote_for(server, max_retries=1), url=url).run()
    assert info.value.attempts == 2
    assert files_in(temp_dir) == []


async def test_wrong_digest_fails_after_the_retries(server: LocalServer, temp_dir: Path) -> None:
    """A digest mismatch is retried, then raised naming url, expected and actual."""
    url = server.route("/a.bin", body(DATA))
    wrong = "0" * 64
    async with DownloaderFactory() as factory:
        with pytest.raises(DigestMismatch) as info:
            await factory.get_downloader(
                remote_for(server, max_retries=2), url=url, expected_digests={"sha256": wrong}
            ).run()
    error = info.value
    assert (error.algorithm, error.expected, error.actual) == ("sha256", wrong, DIGESTS["sha256"])
    assert error.url == url
    assert error.attempts == 3
    for part in (url, wrong, DIGESTS["sha256"]):
        assert part in str(error)
    assert len(server.requests_for("/a.bin")) == 3
    assert files_in(temp_dir) == []


async def test_digest_mismatch_then_good_body_succeeds(server: LocalServer, temp_dir: Path) -> None:
    """A corrupted first body is retried; the good second body is the result."""
    corrupted = b"X" + DATA[1:]
    url = server.route("/a.bin", body(corrupted), body(DATA))
    async with DownloaderFactory() as factory:
        result = await factory.get_downloader(
            remote_for(server), url=url, expected_digests={"sha256": DIGESTS["sha256"]}
        ).run()
    assert result.attempts == 2
    assert result.path.read_bytes() == DATA
    assert files_in(temp_dir) == [result.path]


async def test_redirects_are_followed(server: LocalServer, temp_dir: Path) -> None:
    """A 302 to another path is followed and the final body validated."""
    target = server.route("/real.bin", body(DATA))
    url = server.route("/alias.bin", redirect(target))
    async with DownloaderFactory() as factory:
        result = await factory.get_downloader(
            remote_for(server), url=url, expected_digests={"sha256": DIGESTS["sha256"]}
        ).run()
    assert result.url == url
    assert result.path.read_bytes() == DATA
    assert [r.path for r in server.requests] == ["/alias.bin", "/real.bin"]


async def test_a_redirect_that_cannot_be_followed_is_not_the_file(
    server: LocalServer, temp_dir: Path
) -> None:
    """A 3xx without Location is an HTTPStatusError, not retried, and leaves no file.

    It showed as the redirect's own body ("status 302") returned as the downloaded file
    when nothing was expected of it, as for repository metadata.
    """
    url = server.route("/moved.bin", status(302))
    async with DownloaderFactory() as factory:
        with pytest.raises(HTTPStatusError, match="302") as info:
            await factory.get_downloader(remote_for(server), url=url).run()
    assert info.value.status_code == 302
    assert info.value.attempts == 1
    assert len(server.requests) == 1
    assert files_in(temp_dir) == []


@pytest.mark.parametrize("code", [204, 206])
async def test_a_success_without_the_whole_file_is_not_the_file(
    server: LocalServer, temp_dir: Path, code: int
) -> None:
    """204 No Content or an unasked-for 206 is an HTTPStatusError, not an (empty) file."""
    url = server.route("/odd.bin", status(code))
    async with DownloaderFactory() as factory:
        with pytest.raises(HTTPStatusError, match=str(code)) as info:
            await factory.get_downloader(remote_for(server), url=url).run()
    assert info.value.status_code == code
    assert info.value.attempts == 1
    assert files_in(temp_dir) == []


async def test_wrong_size_is_a_size_mismatch(server: LocalServer, temp_dir: Path) -> None:
    """A body of another size than expected raises SizeMismatch with both sizes."""
    url = server.route("/a.bin", body(DATA))
    async with DownloaderFactory() as factory:
        with pytest.raises(SizeMismatch) as info:
            await factory.get_downloader(
                remote_for(server, max_retries=0), url=url, expected_size=len(DATA) + 1
            ).run()
    assert (info.value.expected, info.value.actual) == (len(DATA) + 1, len(DATA))
    assert url in str(info.value)


async def test_body_shorter_than_expected_fails_in_the_writers_own_check(
    server: LocalServer, temp_dir: Path
) -> None:
    """With no Content-Length to compare first, a short body fails the writer's size check."""
    url = server.route("/a.bin", chunked(DATA))
    async with DownloaderFactory() as factory:
        with pytest.raises(SizeMismatch, match="has the wrong size") as info:
            await factory.get_downloader(
                remote_for(server, max_retries=0), url=url, expected_size=len(DATA) + 7
            ).run()
    assert "the server announced" not in str(info.value)
    assert (info.value.expected, info.value.actual) == (len(DATA) + 7, len(DATA))
    assert files_in(temp_dir) == []


async def test_body_longer_than_expected_stops_early(server: LocalServer, temp_dir: Path) -> None:
    """Without a Content-Length to check up front, receiving stops once past the size."""
    url = server.route("/a.bin", chunked(DATA))
    async with DownloaderFactory() as factory:
        with pytest.raises(SizeMismatch, match="larger than expected") as info:
            await factory.get_downloader(
                remote_for(server, max_retries=0), url=url, expected_size=10
            ).run()
    assert info.value.expected == 10
    assert info.value.actual < len(DATA)
    assert files_in(temp_dir) == []


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate"])
async def test_a_content_encoding_is_not_undone(
    server: LocalServer, temp_dir: Path, encoding: str
) -> None:
    """The bytes kept and hashed are the body as sent, whatever Content-Encoding says.

    A server that labels a .gz file "Content-Encoding: gzip" (Apache's AddEncoding) was
    a SizeMismatch on every try: httpx undid the gzip, so the digests were of bytes the
    metadata never described; "x-gzip" was kept as sent, and a body that is not gzip at
    all was a DecodingError that was not retried.
    """
    packed = gzip.compress(DATA)
    url = server.route("/primary.xml.gz", body(packed, headers={"Content-Encoding": encoding}))
    async with DownloaderFactory() as factory:
        result = await factory.get_downloader(
            remote_for(server, max_retries=0),
            url=url,
            expected_digests={"sha256": hashlib.sha256(packed).hexdigest()},
            expected_size=len(packed),
        ).run()
    assert result.path.read_bytes() == packed


async def test_a_wrong_content_length_under_an_encoding_fails_before_the_body(
    server: LocalServer, temp_dir: Path
) -> None:
    """Content-Length is the length of the bytes kept, so it is checked for any encoding."""
    url = server.route("/a.gz", body(DATA, headers={"Content-Encoding": "gzip"}))
    async with DownloaderFactory() as factory:
        with pytest.raises(SizeMismatch, match="the server announced"):
            await factory.get_downloader(
                remote_for(server, max_retries=0), url=url, expected_size=len(DATA) + 1
            ).run()
    assert files_in(temp_dir) == []


async def test_forbidden_digest_is_refused(server: LocalServer) -> None:
    """An md5 or sha1 expectation is refused before any request is made."""
    url = server.route("/a.bin", body(DATA))
    async with DownloaderFactory() as factory:
        for kind in ("md5", "sha1"):
            with pytest.raises(ForbiddenDigestError, match=kind):
                factory.get_downloader(
                    remote_for(server), url=url, expected_digests={kind: "ab" * 10}
                )
        with pytest.raises(ValueError, match="not allowed"):
            factory.get_downloader(remote_for(server), url=url, expected_digests={"md5": "ab" * 16})
    assert server.requests == []


@pytest.mark.parametrize(
    "value",
    [
        DIGESTS["sha256"][:-1],  # one hex digit short
        DIGESTS["sha512"],  # a sha512 given as the sha256
        DIGESTS["sha256"][:-1] + "g",  # not hex
        "",
    ],
    ids=["short", "too-long", "not-hex", "empty"],
)
async def test_a_malformed_expected_digest_is_refused_before_any_request(
    server: LocalServer, value: str
) -> None:
    """A digest that no bytes can have is refused when the downloader is made.

    It was accepted, and every try downloaded the whole file to end in DigestMismatch.
    """
    url = server.route("/a.bin", body(DATA))
    async with DownloaderFactory() as factory:
        message = r"expected_digests\['sha256'\] must be 64 hex"
        with pytest.raises(MalformedDigestError, match=message):
            factory.get_downloader(remote_for(server), url=url, expected_digests={"sha256": value})
    assert server.requests == []


async def test_an_expected_digest_is_normalised(server: LocalServer, temp_dir: Path) -> None:
    """Upper-case hex and surrounding whitespace (a digest read from a file) are accepted."""
    url = server.route("/a.bin", body(DATA))
    async with DownloaderFactory() as factory:
        downloader = factory.get_downloader(
            remote_for(server, max_retries=0),
            url=url,
            expected_digests={"sha256": f" {DIGESTS['sha256'].upper()}\n"},
        )
        result = await downloader.run()
    assert result.artifact_attributes["sha256"] == DIGESTS["sha256"]
    assert len(server.requests) == 1


async def test_allowed_digests_are_configurable(server: LocalServer, temp_dir: Path) -> None:
    """A factory may allow sha1; then it is computed and accepted as an expectation."""
    url = server.route("/a.bin", body(DATA))
    sha1 = hashlib.sha1(DATA).hexdigest()
    async with DownloaderFactory(allowed_digests={"sha1", "sha256"}) as factory:
        result = await factory.get_downloader(
            remote_for(server), url=url, expected_digests={"sha1": sha1}
        ).run()
    assert set(result.artifact_attributes) == {"size", "sha1", "sha256"}
    assert result.artifact_attributes["sha1"] == sha1
    with pytest.raises(ValueError, match="sha256"):
        DownloaderFactory(allowed_digests={"sha512"})


async def test_stalled_body_ends_in_a_timeout(server: LocalServer, temp_dir: Path) -> None:
    """A server that stops sending mid-body ends in DownloadTimeout, not a hang."""
    url = server.route("/stall", stall(DATA, send=100))
    remote = remote_for(server, sock_read_timeout=0.2, max_retries=1)
    with anyio.fail_after(20):  # a hang would fail here, not block the suite
        async with DownloaderFactory() as factory:
            with pytest.raises(DownloadTimeout) as info:
                await factory.get_downloader(remote, url=url).run()
    assert "sock_read_timeout=0.2" in str(info.value)
    assert info.value.attempts == 2
    assert files_in(temp_dir) == []


async def test_total_timeout_ends_a_trickle(server: LocalServer, temp_dir: Path) -> None:
    """A body that keeps trickling in ends at total_timeout."""
    url = server.route("/slow", trickle(DATA, interval=0.02))
    remote = remote_for(server, total_timeout=0.3, max_retries=0)
    with anyio.fail_after(20):
        async with DownloaderFactory() as factory:
            with pytest.raises(DownloadTimeout, match="total_timeout"):
                await factory.get_downloader(remote, url=url).run()
    assert files_in(temp_dir) == []


class DeadlineReporter(HttpDownloader):
    """An HttpDownloader that hands the deadline of its first try's total_timeout to
    ``on_deadline``, so that a test can make another deadline coincide with it."""

    def __init__(self, *, on_deadline: Callable[[float], object], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_deadline: Callable[[float], object] | None = on_deadline

    def build_request(self, client: httpx.AsyncClient) -> httpx.Request:
        if self._on_deadline is not None:
            # build_request runs inside the try's total_timeout scope: the earliest deadline.
            self._on_deadline(anyio.current_effective_deadline())
            self._on_deadline = None
        return super().build_request(client)


@pytest.mark.parametrize("offset", [0.0, -1e-6], ids=["same-deadline", "a-microsecond-earlier"])
async def test_an_outer_deadline_at_the_total_timeout_cancels_rather_than_retries(
    server: LocalServer, temp_dir: Path, offset: float
) -> None:
    """An enclosing cancel scope expiring with total_timeout cancels; no retried timeout."""
    url = server.route("/stall", stall(DATA, send=100))
    remote = remote_for(server, total_timeout=0.1, max_retries=2)
    outer = anyio.CancelScope()

    def expire_outer_with(deadline: float) -> None:
        outer.deadline = deadline + offset

    with recorded_retries() as retries, anyio.fail_after(10):
        async with DownloaderFactory() as factory:
            factory.register("http", DeadlineReporter)
            with outer:
                await factory.get_downloader(remote, url=url, on_deadline=expire_outer_with).run()
    assert outer.cancelled_caught
    assert retries == []
    # No retry. (Under load the 0.1 s can run out before the request reaches the server.)
    assert len(server.requests_for("/stall")) <= 1
    assert files_in(temp_dir) == []


# Task.cancel() is asyncio's own; on trio every cancellation is a cancel scope's (above).
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_native_asyncio_cancellation_at_the_total_timeout_is_not_swallowed(
    server: LocalServer, temp_dir: Path
) -> None:
    """asyncio.timeout() expiring with total_timeout raises its TimeoutError; no retry.

    With anyio < 4.16 the try's cancel scope took the CancelledError, into which asyncio
    folds both cancellations, for its own alone (anyio #1214): the download was retried
    as a DownloadTimeout, then failed with one, and asyncio.timeout() never fired.
    """
    url = server.route("/stall", stall(DATA, send=100))
    remote = remote_for(server, total_timeout=0.1, max_retries=2)
    with recorded_retries() as retries, anyio.fail_after(10):
        async with DownloaderFactory() as factory:
            factory.register("http", DeadlineReporter)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(None) as outer:
                    await factory.get_downloader(
                        remote, url=url, on_deadline=outer.reschedule
                    ).run()
    assert retries == []
    # No retry. (Under load the 0.1 s can run out before the request reaches the server.)
    assert len(server.requests_for("/stall")) <= 1
    assert files_in(temp_dir) == []


async def test_connection_refused_is_a_connection_error(temp_dir: Path, refused_port: int) -> None:
    """Nothing listening: DownloadConnectionError after the retries, naming the url."""
    url = f"http://127.0.0.1:{refused_port}/x"
    remote = Remote(url=url, max_retries=1)
    async with DownloaderFactory() as factory:
        with pytest.raises(DownloadConnectionError) as info:
            await factory.get_downloader(remote, url=url).run()
    assert info.value.attempts == 2
    assert url in str(info.value)


@pytest.mark.parametrize(
    "suffix",
    [":abc/x", ":99999/x", ":{port}/a\x00b"],
    ids=["port-not-a-number", "port-out-of-range", "control-character"],
)
async def test_malformed_url_is_a_download_error(
    server: LocalServer, temp_dir: Path, suffix: str
) -> None:
    """A malformed url from upstream metadata is a DownloadError naming it, on both backends.

    It showed as a raw ``httpx.InvalidURL`` (bad port, control character) and, on asyncio
    only, as an ``ExceptionGroup`` wrapping ``OverflowError`` (port above 65535).
    """
    url = "http://127.0.0.1" + suffix.format(port=server.port)
    remote = Remote(url=server.url("/"), max_retries=2)
    async with DownloaderFactory() as factory:
        with pytest.raises(DownloadError) as info:
            await factory.get_downloader(remote, url=url).run()
    assert info.value.url == url
    assert info.value.attempts == 1
    assert files_in(temp_dir) == []


async def test_a_request_that_cannot_be_encoded_is_a_download_error(
    anyio_backend: str, server: LocalServer, temp_dir: Path
) -> None:
    """A host no IDNA codec accepts, or a non-ASCII header, is a DownloadError, not retried.

    It showed as a raw ``UnicodeError`` escaping ``run()``: from httpx building the request
    for an invalid A-label or a non-ASCII per-download header (both backends) and, on trio
    only, from its resolver encoding a host with an empty or over-long label (asyncio hands
    that host to DNS, which refuses it; not tried here, tests stay on 127.0.0.1). Not being
    a DownloadError, it also ended a mirror fallback at that mirror.
    """
    cases: list[tuple[str, dict[str, str]]] = [
        ("http://xn--zz/x", {}),
        (server.url("/x"), {"X-Token": "caf\u00e9"}),
    ]
    if anyio_backend == "trio":
        cases += [("http://mirror..example/x", {}), (f"http://{'a' * 64}.example/x", {})]
    remote = Remote(url=server.url("/"), max_retries=2)
    async with DownloaderFactory() as factory:
        for url, headers in cases:
            with pytest.raises(DownloadError, match="cannot be encoded") as info:
                await factory.get_downloader(remote, url=url, headers=headers).run()
            assert type(info.value) is DownloadError
            assert info.value.url == url
            assert info.value.attempts == 1
    assert server.requests == []
    assert files_in(temp_dir) == []


async def test_unparsable_url_is_refused_with_a_download_error(temp_dir: Path) -> None:
    """get_downloader refuses a url urllib cannot split with a DownloadError, not ValueError."""
    url = "http://[::1/x"
    remote = Remote(url="http://127.0.0.1/")
    async with DownloaderFactory() as factory:
        with pytest.raises(DownloadError) as info:
            factory.get_downloader(remote, url=url)
    assert info.value.url == url


async def test_concurrency_never_exceeds_download_concurrency(
    server: LocalServer, temp_dir: Path
) -> None:
    """With 12 downloads started at once, the server never sees more than 3 in flight."""
    remote = remote_for(server, download_concurrency=3)
    urls = [
        server.route(f"/f{i}", hold_until_in_flight(DATA, count=3, total=12)) for i in range(12)
    ]
    async with DownloaderFactory() as factory, anyio.create_task_group() as tg:
        for url in urls:
            tg.start_soon(_run, factory, remote, url)
    assert server.state.max_in_flight == 3
    assert len(server.requests) == 12


async def _run(factory: DownloaderFactory, remote: Remote, url: str) -> None:
    await factory.get_downloader(remote, url=url).run()


async def test_rate_limit_holds_for_requests_and_retries(
    server: LocalServer, temp_dir: Path
) -> None:
    """rate_limit=20/s: 8 requests (retries included) take at least 7/20 s to start."""
    remote = remote_for(server, rate_limit=20, download_concurrency=8)
    urls = [server.route(f"/r{i}", body(DATA)) for i in range(5)]
    urls.append(server.route("/retry", status(500), status(500), body(DATA)))
    started = anyio.current_time()
    async with DownloaderFactory() as factory, anyio.create_task_group() as tg:
        for url in urls:
            tg.start_soon(_run, factory, remote, url)
    elapsed = anyio.current_time() - started
    assert len(server.requests) == 8
    assert elapsed >= 7 / 20


async def test_cancelling_mid_download_leaves_no_temporary_file(
    server: LocalServer, temp_dir: Path
) -> None:
    """Cancelling a download whose file is half written removes the file."""
    url = server.route("/stall", stall(DATA * 8, send=len(DATA) * 2))
    remote = remote_for(server)
    async with DownloaderFactory(batch_size=64 * 1024) as factory:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_run, factory, remote, url)
                with anyio.fail_after(10):
                    # The file appearing is the event to wait for; nothing else signals it.
                    while not files_in(temp_dir):  # noqa: ASYNC110
                        await anyio.sleep(0.01)
                scope.cancel()
    assert scope.cancelled_caught
    assert files_in(temp_dir) == []


async def test_a_content_length_beside_chunking_is_not_the_size(
    server: LocalServer, temp_dir: Path
) -> None:
    """With Transfer-Encoding, Content-Length means nothing (RFC 9112 §6.3): the chunked
    body is read and checked, not the stray header.

    The header was compared with the expected size up front, so every try failed with
    SizeMismatch although the body was right.
    """
    url = server.route("/both", chunked(DATA, content_length=len(DATA) + 100))
    async with DownloaderFactory() as factory:
        result = await factory.get_downloader(
            remote_for(server), url=url, expected_size=len(DATA)
        ).run()
    assert result.path.read_bytes() == DATA
    assert result.attempts == 1


async def test_cancelled_while_its_own_client_closes_leaves_no_temporary_file(
    server: LocalServer, temp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A download outside a factory closes its own client after the file is finished; a
    cancellation arriving during that close must not leave the finished file behind.

    The close of a real client over plain HTTP is too quick to cancel by timing, so it
    is held open here (the one substitute in this test): the download is otherwise real.
    """
    url = server.route("/a.bin", body(DATA))
    closing = anyio.Event()
    real_exit = httpx.AsyncClient.__aexit__

    async def slow_exit(client: httpx.AsyncClient, *exc_info: Any) -> None:
        closing.set()
        try:
            await anyio.sleep_forever()
        finally:  # still close it, so that the test leaks no socket
            with anyio.CancelScope(shield=True):
                await real_exit(client, *exc_info)

    monkeypatch.setattr(httpx.AsyncClient, "__aexit__", slow_exit)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            # No factory open: the run's factory gives the download a client of its own.
            tg.start_soon(_run, current_downloader_factory(), remote_for(server), url)
            with anyio.fail_after(10):
                await closing.wait()
            scope.cancel()
    assert scope.cancelled_caught
    assert files_in(temp_dir) == []


async def test_basic_auth(server: LocalServer, temp_dir: Path) -> None:
    """The remote's username and password are sent as basic auth; without them, 401."""
    url = server.route("/private", require_basic_auth("alice", "s3cret", body(DATA)))
    async with DownloaderFactory() as factory:
        result = await factory.get_downloader(
            remote_for(server, username="alice", password="s3cret"), url=url
        ).run()
        assert result.path.read_bytes() == DATA
        with pytest.raises(HTTPStatusError, match="username and password") as info:
            await factory.get_downloader(remote_for(server), url=url).run()
    assert info.value.status_code == 401
    assert info.value.attempts == 1


async def test_custom_headers_are_sent(server: LocalServer, temp_dir: Path) -> None:
    """Remote headers and per-download headers reach the server."""
    url = server.route("/h", body(DATA))
    remote = remote_for(server, headers={"X-Remote": "r"})
    async with DownloaderFactory() as factory:
        await factory.get_downloader(remote, url=url, headers={"X-Call": "c"}).run()
    (request,) = server.requests_for("/h")
    assert request.headers["X-Remote"] == "r"
    assert request.headers["X-Call"] == "c"
    assert request.headers["User-Agent"].startswith("stageline/")


async def test_one_client_per_remote_is_reused_and_closed(
    server: LocalServer, temp_dir: Path
) -> None:
    """Downloads from one remote share a pooled client; the factory closes it on exit."""
    url = server.route("/a.bin", body(DATA))
    remote = remote_for(server)
    async with DownloaderFactory() as factory:
        for _ in range(3):
            await factory.get_downloader(remote, url=url).run()
        session = factory.session(remote)
        async with session.client() as first, session.client() as second:
            assert first is second
    assert first.is_closed
    ports = {r.headers.get("Host") for r in server.requests}
    assert ports == {f"127.0.0.1:{server.port}"}


async def test_a_downloader_run_after_its_factory_closed_opens_no_client(
    server: LocalServer, temp_dir: Path
) -> None:
    """A downloader made inside a factory and run after it closed is refused.

    It showed as a download that succeeded by silently opening a new pooled client that
    nothing would ever close (ResourceWarning: unclosed socket and transport).
    """
    url = server.route("/a.bin", body(DATA), body(DATA))
    remote = remote_for(server)
    async with DownloaderFactory() as factory:
        downloader = factory.get_downloader(remote, url=url)
        await downloader.run()
    with pytest.raises(DownloaderFactoryClosed, match="closed"):
        await downloader.run()
    assert len(server.requests) == 1
    assert len(files_in(temp_dir)) == 1  # the first download's, which its caller owns


async def test_a_download_cut_off_by_its_factory_closing_fails_clearly_without_retrying(
    server: LocalServer, temp_dir: Path
) -> None:
    """A factory closed under a running download fails it with DownloaderFactoryClosed.

    It showed as a DownloadConnectionError ("check the url, the network …") that was
    retried as if the network had failed, the retry then failing with "is closed".
    """
    url = server.route("/stall", stall(DATA, send=1000))
    remote = remote_for(server, max_retries=3)

    async def run(factory: DownloaderFactory) -> None:
        with pytest.raises(DownloaderFactoryClosed, match="closed while") as info:
            await factory.get_downloader(remote, url=url).run()
        assert url in str(info.value)

    # The mistake: a task that outlives the factory it was handed.
    with recorded_retries() as retries, anyio.fail_after(10):
        async with anyio.create_task_group() as tg, DownloaderFactory() as factory:
            tg.start_soon(run, factory)
            await anyio.to_thread.run_sync(server.state.body_started.wait, 5)
            await anyio.wait_all_tasks_blocked()
    assert retries == []
    assert len(server.requests_for("/stall")) == 1
    assert files_in(temp_dir) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
async def test_a_factory_closed_while_a_download_makes_its_client_leaks_no_client(
    server: LocalServer, temp_dir: Path, tmp_path: Path
) -> None:
    """A client still being made for a download when the factory closes is never used.

    It showed as a download that succeeded through a pooled client made just after the
    factory had closed, which nothing ever closed (ResourceWarning: unclosed socket).
    """
    url = server.route("/a.bin", body(DATA))
    # Making the first client loads the remote's CA bundle in a worker thread; a named
    # pipe holds it there until the test has closed the factory.
    ca_cert = tmp_path / "ca.pem"
    os.mkfifo(ca_cert)
    remote = remote_for(server, ca_cert=str(ca_cert))
    pem = trustme.CA().cert_pem.bytes()

    def write_the_ca_bundle() -> None:
        with ca_cert.open("wb") as pipe:
            pipe.write(pem)

    async def run() -> None:
        with pytest.raises(DownloaderFactoryClosed, match="closed while") as info:
            await factory.get_downloader(remote, url=url).run()
        assert url in str(info.value)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            async with DownloaderFactory() as factory:
                tg.start_soon(run)
                await anyio.wait_all_tasks_blocked()
            await anyio.to_thread.run_sync(write_the_ca_bundle)
    assert server.requests == []
    assert files_in(temp_dir) == []


async def test_a_factory_closed_between_a_redirect_and_its_target_ends_the_download(
    server: LocalServer, temp_dir: Path
) -> None:
    """A redirect's next request is refused once the factory has closed.

    httpx checks that a client is open only when send() starts, and httpcore's closed
    pool still opens connections: a factory closing after a 302 but before the request
    to its Location let the download go on through a connection nothing closed. A hook
    of the test's own closes the factory at that moment.
    """
    target = server.route("/target", body(DATA))
    url = server.route("/moved", redirect(target))
    remote = remote_for(server)
    factory = DownloaderFactory()

    async def close_before_the_target(request: httpx.Request) -> None:
        if request.url.path == "/target":
            await factory.aclose()

    async with factory:
        async with factory.session(remote).client() as client:
            client.event_hooks["request"].insert(0, close_before_the_target)
        with pytest.raises(DownloaderFactoryClosed, match="closed while") as info:
            await factory.get_downloader(remote, url=url).run()
    assert url in str(info.value)
    assert server.requests_for("/target") == []
    assert files_in(temp_dir) == []


async def test_downloads_work_without_an_open_factory(server: LocalServer, temp_dir: Path) -> None:
    """Outside a factory each download uses its own client, closed when it ends."""
    url = server.route("/a.bin", body(DATA))
    factory = current_downloader_factory()
    result = await factory.get_downloader(remote_for(server), url=url).run()
    assert result.path.read_bytes() == DATA


async def test_limits_hold_without_an_open_factory(server: LocalServer, temp_dir: Path) -> None:
    """The run's default factory still caps a remote's requests in flight."""
    remote = remote_for(server, download_concurrency=2)
    hold = hold_until_in_flight(DATA, count=2, total=6)
    urls = [server.route(f"/d{i}", hold) for i in range(6)]
    factory = current_downloader_factory()
    async with anyio.create_task_group() as tg:
        for url in urls:
            tg.start_soon(_run, factory, remote, url)
    assert server.state.max_in_flight == 2
    assert len(server.requests) == 6


async def test_a_subclass_can_be_registered_for_a_scheme(
    server: LocalServer, temp_dir: Path
) -> None:
    """A plugin's HttpDownloader subclass registered on the factory handles http urls."""
    url = server.route("/a.bin", body(DATA))

    class TokenDownloader(HttpDownloader):
        def build_request(self, client):  # type: ignore[no-untyped-def]
            request = super().build_request(client)
            request.headers["Authorization"] = "Bearer token"
            return request

    async with DownloaderFactory() as factory:
        factory.register("http", TokenDownloader)
        downloader = factory.get_downloader(remote_for(server), url=url)
        assert isinstance(downloader, TokenDownloader)
        await downloader.run()
    assert server.requests_for("/a.bin")[0].headers["Authorization"] == "Bearer token"


class RaisingForStatus(HttpDownloader):
    """A plugin's check_response written the httpx way."""

    def check_response(self, response: httpx.Response) -> None:
        response.raise_for_status()
        super().check_response(response)


async def test_httpx_status_errors_from_check_response_follow_the_status_rules(
    server: LocalServer, temp_dir: Path
) -> None:
    """``response.raise_for_status()`` in a check_response override: 503 retried, 404 not.

    httpx's HTTPStatusError became a plain DownloadError without ``status_code``, so a
    503 or 429 answered to such a subclass was never retried and Retry-After was lost.
    """
    flaky = server.route(
        "/flaky", status(503, headers={"Retry-After": "0"}), status(502), body(DATA)
    )
    missing = server.route("/missing", status(404))
    async with DownloaderFactory() as factory:
        factory.register("http", RaisingForStatus)
        result = await factory.get_downloader(remote_for(server, max_retries=3), url=flaky).run()
        with pytest.raises(HTTPStatusError) as info:
            await factory.get_downloader(remote_for(server, max_retries=3), url=missing).run()
    assert result.attempts == 3
    assert result.path.read_bytes() == DATA
    assert info.value.status_code == 404
    assert info.value.attempts == 1
    assert info.value.url == missing
    assert "check the remote's url" in str(info.value)
    assert len(server.requests_for("/missing")) == 1
    assert files_in(temp_dir) == [result.path]


@contextlib.contextmanager
def recorded_retries() -> Iterator[list[int]]:
    """The numbers of the retries stamina starts while the block runs."""
    retries: list[int] = []
    stamina.instrumentation.set_on_retry_hooks([lambda details: retries.append(details.retry_num)])
    try:
        yield retries
    finally:
        stamina.instrumentation.set_on_retry_hooks(None)
