"""Sessions (pool, concurrency, rate limit) belong to the remote's identity, not the object."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from stageline.download import DownloaderFactory, current_downloader_factory
from stageline.models import Remote

from ._servers import LocalServer, body, hold_until_in_flight

pytestmark = pytest.mark.anyio

DATA = b"session " * 1000


async def _download_all(factory: DownloaderFactory, pairs: list[tuple[Remote, str]]) -> None:
    async def one(remote: Remote, url: str) -> None:
        await factory.get_downloader(remote, url=url).run()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for remote, url in pairs:
                tg.start_soon(one, remote, url)


@pytest.mark.parametrize(
    "identity", [{"pk": 7}, {"name": "upstream"}, {"pk": 7, "name": "upstream"}], ids=str
)
async def test_two_objects_of_one_remote_share_one_concurrency_limit(
    server: LocalServer, temp_dir: Path, identity: dict[str, object]
) -> None:
    """Two Remote objects for the same saved (or same-named) remote share its limit.

    Each Python object had its own session: two objects loaded for one remote allowed
    twice its download_concurrency against the server. The server holds each request
    until a second one is in flight (or a second has passed): with one shared slot
    that second request never comes while the first is held.
    """
    hold = hold_until_in_flight(DATA, count=2, total=2, limit=1.0)
    urls = [server.route("/a", hold), server.route("/b", hold)]
    first = Remote(url=server.url("/"), download_concurrency=1, **identity)  # type: ignore[arg-type]
    second = Remote(url=server.url("/"), download_concurrency=1, **identity)  # type: ignore[arg-type]
    async with DownloaderFactory() as factory:
        await _download_all(factory, [(first, urls[0]), (second, urls[1])])
        shared = factory.session(first) is factory.session(second)
    assert server.state.max_in_flight == 1
    assert shared
    assert len(server.requests) == 2


async def test_objects_of_one_remote_share_the_pool_and_the_rate_limiter(
    server: LocalServer, temp_dir: Path
) -> None:
    """One pooled client and one rate limiter per saved remote, whichever object asks."""
    url = server.route("/a", body(DATA))
    first = Remote(url=server.url("/"), pk=3, rate_limit=1000)
    second = Remote(url=server.url("/"), pk=3, rate_limit=1000)
    async with DownloaderFactory() as factory:
        await _download_all(factory, [(first, url), (second, url)])
        one, other = factory.session(first), factory.session(second)
        async with one.client() as client_one, other.client() as client_other:
            assert client_one is client_other
        assert one.rate_limiter is other.rate_limiter
        assert one.limiter is other.limiter
    assert len(server.requests) == 2


async def test_different_remotes_keep_their_own_sessions(
    server: LocalServer, temp_dir: Path
) -> None:
    """Other pks, other names, and unsaved unnamed objects each get their own session."""
    hold = hold_until_in_flight(DATA, count=2, total=2, limit=10.0)
    urls = [server.route("/a", hold), server.route("/b", hold)]
    unnamed = [Remote(url=server.url("/"), download_concurrency=1) for _ in range(2)]
    async with DownloaderFactory() as factory:
        # Each request is answered only once both are in flight: separate limits.
        await _download_all(factory, list(zip(unnamed, urls, strict=True)))
        assert factory.session(unnamed[0]) is not factory.session(unnamed[1])
        assert factory.session(Remote(url="http://x/", pk=1)) is not factory.session(
            Remote(url="http://x/", pk=2)
        )
        assert factory.session(Remote(url="http://x/", name="a")) is not factory.session(
            Remote(url="http://x/", name="b")
        )
    assert server.state.max_in_flight == 2


async def test_the_run_factory_keys_sessions_by_identity_too(
    server: LocalServer, temp_dir: Path
) -> None:
    """Outside an open factory, two objects of one saved remote still share one limit."""
    hold = hold_until_in_flight(DATA, count=2, total=2, limit=1.0)
    urls = [server.route("/a", hold), server.route("/b", hold)]
    first = Remote(url=server.url("/"), download_concurrency=1, pk=9)
    second = Remote(url=server.url("/"), download_concurrency=1, pk=9)
    await _download_all(current_downloader_factory(), [(first, urls[0]), (second, urls[1])])
    assert server.state.max_in_flight == 1


async def test_a_remote_saved_during_a_sync_keeps_its_session(
    server: LocalServer, temp_dir: Path
) -> None:
    """A named remote that gets its pk mid-sync (RemoteArtifactSaver) keeps one session."""
    remote = Remote(url=server.url("/"), name="upstream")
    async with DownloaderFactory() as factory:
        before = factory.session(remote)
        remote.pk = 12
        assert factory.session(remote) is before
        assert factory.session(Remote(url=server.url("/"), name="upstream", pk=12)) is before
