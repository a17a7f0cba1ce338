"""Alternate content sources: files a nearer copy has are fetched there first, by sha256.

The source is a second local server, "refreshed" the way a Pulp user would: synced on
demand into a repository of its own, so that the store knows its files (remote artifacts
with their urls and sha256) without downloading them. Requests are counted at both
servers.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from stageline import DeclarativeVersion, HTTPStatusError, StageConfigurationError, Workspace
from stageline.models import DownloadPolicy, Remote, Repository
from stageline.stages import AlternateContentSource

from ..download._servers import LocalServer, body, require_basic_auth, running, status
from ._plugin import ManifestFirstStage, Upstream
from ._support import paths_in

pytestmark = pytest.mark.anyio

FILES = {"a": b"the bytes of a", "b": b"the bytes of b", "c": b"the bytes of c"}


@pytest.fixture
def mirror_server() -> Iterator[LocalServer]:
    """The alternate content source's own server."""
    with running(LocalServer()) as srv:
        yield srv


@pytest.fixture
def mirror(mirror_server: LocalServer) -> Upstream:
    """The source: a copy of "a" and "b" only, under /mirror/."""
    source = Upstream(mirror_server, prefix="/mirror/")
    for path in ("a", "b"):
        source.add(path, FILES[path])
    return source


def mirror_remote(mirror: Upstream, **settings: object) -> Remote:
    return mirror.remote(name="mirror", policy=DownloadPolicy.ON_DEMAND, **settings)


async def refresh(workspace: Workspace, remote: Remote) -> None:
    """Make the source's files known to the store: an on-demand sync of its own."""
    assert await DeclarativeVersion(
        ManifestFirstStage(remote), Repository(name="acs-mirror"), workspace=workspace
    ).acreate()


def with_sources(workspace: Workspace, *remotes: Remote) -> Workspace:
    """The same store and storage, with these alternate content sources."""
    return Workspace(
        workspace.home,
        database=workspace.database,
        artifacts=workspace.storage.root,
        alternate_sources=[AlternateContentSource(remote) for remote in remotes],
    )


def serve_upstream(upstream: Upstream) -> None:
    for path, data in FILES.items():
        upstream.add(path, data)


async def sync_with_acs(workspace: Workspace, upstream: Upstream, **settings: object) -> None:
    with anyio.fail_after(30):
        assert await DeclarativeVersion(
            ManifestFirstStage(upstream.remote(**settings)),
            Repository(name="files"),
            acs=True,
            workspace=workspace,
        ).acreate()


async def test_files_the_source_has_come_from_it_and_the_rest_from_upstream(
    any_workspace: Workspace, upstream: Upstream, mirror: Upstream
) -> None:
    """a and b are fetched at the source, c (which it lacks) upstream; all are synced."""
    serve_upstream(upstream)
    remote = mirror_remote(mirror)
    await refresh(any_workspace, remote)
    assert mirror.file_requests() == []  # on demand: the refresh downloads no file
    await sync_with_acs(with_sources(any_workspace, remote), upstream)
    assert sorted(mirror.file_requests()) == ["/mirror/a", "/mirror/b"]
    assert upstream.file_requests() == ["/repo/c"]
    assert sorted(await paths_in(any_workspace)) == ["a", "b", "c"]


async def test_without_acs_the_sources_are_not_used(
    workspace: Workspace, upstream: Upstream, mirror: Upstream
) -> None:
    """acs=False (the default): every file comes from upstream, the source sees nothing."""
    serve_upstream(upstream)
    remote = mirror_remote(mirror)
    await refresh(workspace, remote)
    assert await DeclarativeVersion(
        ManifestFirstStage(upstream.remote()),
        Repository(name="files"),
        workspace=with_sources(workspace, remote),
    ).acreate()
    assert mirror.file_requests() == []
    assert sorted(upstream.file_requests()) == ["/repo/a", "/repo/b", "/repo/c"]


@pytest.mark.parametrize("failure", ["error", "other bytes"])
async def test_when_the_source_fails_the_declared_url_is_used(
    workspace: Workspace, upstream: Upstream, mirror: Upstream, failure: str
) -> None:
    """The source answers 500, or serves bytes that fail the digest: a is fetched upstream."""
    serve_upstream(upstream)
    remote = mirror_remote(mirror)
    await refresh(workspace, remote)
    broken = status(500) if failure == "error" else body(b"THE BYTES OF A")
    mirror.server.route("/mirror/a", broken)
    await sync_with_acs(with_sources(workspace, remote), upstream)
    assert sorted(mirror.file_requests()) == ["/mirror/a", "/mirror/b"]
    assert sorted(upstream.file_requests()) == ["/repo/a", "/repo/c"]
    assert sorted(await paths_in(workspace)) == ["a", "b", "c"]


async def test_when_both_fail_the_error_is_upstreams_with_a_note_on_the_source(
    workspace: Workspace, upstream: Upstream, mirror: Upstream
) -> None:
    """Source and upstream answer 404: the error names the declared url; a note, the source."""
    serve_upstream(upstream)
    remote = mirror_remote(mirror)
    await refresh(workspace, remote)
    mirror.server.route("/mirror/a", status(404))
    upstream.server.route("/repo/a", status(404))
    with pytest.raises(HTTPStatusError) as info:
        await sync_with_acs(with_sources(workspace, remote), upstream)
    assert info.value.url == upstream.url("a")
    notes = "\n".join(info.value.__notes__)
    assert "alternate content source 'mirror' failed first" in notes
    assert mirror.server.url("/mirror/a") in notes


async def test_each_remote_keeps_its_own_credentials(
    workspace: Workspace, upstream: Upstream, mirror: Upstream
) -> None:
    """The source is fetched with its remote's login; upstream's never reaches it."""
    serve_upstream(upstream)
    for path in ("a", "b"):
        mirror.server.route(
            f"/mirror/{path}", require_basic_auth("reader", "s3cret", body(FILES[path]))
        )
    remote = mirror_remote(mirror, username="reader", password="s3cret")
    await refresh(workspace, remote)
    await sync_with_acs(
        with_sources(workspace, remote), upstream, username="upstream", password="other"
    )
    assert upstream.file_requests() == ["/repo/c"]
    sent = [r.headers.get("Authorization") for r in mirror.server.requests_for("/mirror/a")]
    assert len(sent) == 1
    assert sent[0] is not None
    assert sent[0].startswith("Basic ")
    assert "upstream" not in sent[0]


async def test_the_first_source_that_has_a_file_is_tried_first(
    workspace: Workspace, upstream: Upstream, mirror: Upstream, mirror_server: LocalServer
) -> None:
    """Two sources with a: the one listed first serves it; when it fails, the second does."""
    serve_upstream(upstream)
    second = Upstream(mirror_server, prefix="/second/")
    second.add("a", FILES["a"])
    first_remote = mirror_remote(mirror)
    second_remote = second.remote(name="second", policy=DownloadPolicy.ON_DEMAND)
    await refresh(workspace, first_remote)
    assert await DeclarativeVersion(
        ManifestFirstStage(second_remote), Repository(name="acs-second"), workspace=workspace
    ).acreate()
    mirror.server.route("/mirror/a", status(500))
    await sync_with_acs(with_sources(workspace, first_remote, second_remote), upstream)
    requests = [r.path for r in mirror_server.requests if not r.path.endswith("MANIFEST")]
    assert requests.index("/mirror/a") < requests.index("/second/a")
    assert "/second/b" not in requests
    assert upstream.file_requests() == ["/repo/c"]


def test_sources_are_checked_where_they_are_given(workspace: Workspace) -> None:
    """acs=True needs sources; a source needs a named Remote; a workspace, sources only."""
    first = ManifestFirstStage.__new__(ManifestFirstStage)
    with pytest.raises(StageConfigurationError, match="alternate_sources"):
        DeclarativeVersion(first, Repository(name="x"), acs=True, workspace=workspace)
    with pytest.raises(StageConfigurationError, match="no name") as info:
        AlternateContentSource(Remote(url="http://user:s3cret@127.0.0.1:9/"))
    assert "s3cret" not in str(info.value)
    with pytest.raises(StageConfigurationError, match="Remote"):
        AlternateContentSource("http://127.0.0.1:9/")  # type: ignore[arg-type]
    with pytest.raises(StageConfigurationError, match="AlternateContentSource"):
        Workspace(workspace.home, alternate_sources=["http://127.0.0.1:9/"])  # type: ignore[list-item]
