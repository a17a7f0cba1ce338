"""On-demand fetching: open a version's file, fetched from its remotes when it is deferred."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from stageline import (
    ContentNotFound,
    ContentRangeError,
    DeclarativeVersion,
    DigestMismatch,
    HTTPStatusError,
    Stage,
    StorageError,
    UnsafeURLError,
    Workspace,
)
from stageline.models import DownloadPolicy, Repository
from stageline.stages import RemoteArtifactSaver
from stageline.store import NewVersion
from stageline.sync import open_content, open_content_fetcher

from ..download._servers import body, status
from ._on_demand_support import FILES, files_in_area, read_file, synced
from ._plugin import ManifestFirstStage, Upstream, sha256_of
from ._support import content_artifacts, leftover_temporary_files, remote_artifacts, sync

pytestmark = pytest.mark.anyio


async def test_an_on_demand_file_is_fetched_validated_and_saved_once(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """The first open downloads and saves the file; the second reads it from storage."""
    await synced(any_workspace, upstream)
    assert upstream.file_requests() == []
    async with open_content_fetcher(any_workspace) as fetcher:
        async with fetcher.open_path("files", None, "dir/b") as opened:
            assert (opened.size, opened.sha256) == (len(FILES["dir/b"]), sha256_of(FILES["dir/b"]))
            assert (opened.fetched_from, opened.saved) == (upstream.url("dir/b"), True)
            assert await opened.read() == FILES["dir/b"]
        assert upstream.file_requests() == ["/repo/dir/b"]
        assert await read_file(fetcher, "dir/b", version=1) == (FILES["dir/b"], None)
        assert files_in_area(fetcher.temporary_area) == []
    assert upstream.file_requests() == ["/repo/dir/b"]
    cas = await content_artifacts(any_workspace)
    artifact = cas["dir/b"].artifact
    assert artifact is not None
    assert (artifact.sha256, artifact.size) == (sha256_of(FILES["dir/b"]), len(FILES["dir/b"]))
    assert await any_workspace.storage.read_bytes(artifact) == FILES["dir/b"]
    assert cas["a"].artifact is None
    async with open_content_fetcher(any_workspace) as fetcher:
        assert await read_file(fetcher, "dir/b") == (FILES["dir/b"], None)
    assert upstream.file_requests() == ["/repo/dir/b"]
    assert leftover_temporary_files(any_workspace) == []


async def test_a_streamed_file_is_fetched_every_time_and_never_saved(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """Each open of a streamed file downloads it; nothing is stored and the copy goes."""
    await synced(any_workspace, upstream, DownloadPolicy.STREAMED)
    async with open_content_fetcher(any_workspace) as fetcher:
        for _ in range(2):
            async with fetcher.open_path("files", 1, "a") as opened:
                assert (opened.saved, opened.fetched_from) == (False, upstream.url("a"))
                assert (opened.size, opened.sha256) == (len(FILES["a"]), sha256_of(FILES["a"]))
                assert await opened.read() == FILES["a"]
                assert files_in_area(fetcher.temporary_area) != []
            assert files_in_area(fetcher.temporary_area) == []
    assert upstream.file_requests() == ["/repo/a", "/repo/a"]
    assert (await content_artifacts(any_workspace))["a"].artifact is None
    assert not await any_workspace.storage.exists(sha256_of(FILES["a"]))
    assert leftover_temporary_files(any_workspace) == []


async def test_the_first_remote_failing_falls_back_to_the_second(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """Remote artifacts are tried in turn: the upstream's 500 makes the mirror serve it."""
    await synced(any_workspace, upstream)
    mirror = Upstream(upstream.server, prefix="/mirror/")
    for path, data in FILES.items():
        mirror.add(path, data)
    remote = mirror.remote(name="mirror", policy=DownloadPolicy.ON_DEMAND)
    assert await sync(any_workspace, ManifestFirstStage(remote)) is None
    assert [ra.remote.name for ra in (await remote_artifacts(any_workspace))["a"]] == [
        "upstream",
        "mirror",
    ]
    upstream.server.route("/repo/a", status(500))
    async with open_content_fetcher(any_workspace) as fetcher:
        assert await read_file(fetcher, "a") == (FILES["a"], mirror.url("a"))
        assert await read_file(fetcher, "a") == (FILES["a"], None)
    assert [r.path for r in upstream.server.requests if r.path.endswith("/a")] == [
        "/repo/a",
        "/mirror/a",
    ]


async def test_when_every_remote_fails_the_last_error_comes_with_notes(
    workspace: Workspace, upstream: Upstream
) -> None:
    """Both remotes failing raise the mirror's error, noting how the upstream failed."""
    await synced(workspace, upstream)
    mirror = Upstream(upstream.server, prefix="/mirror/")
    for path, data in FILES.items():
        mirror.add(path, data)
    await sync(workspace, ManifestFirstStage(mirror.remote(name="mirror", policy="on_demand")))
    upstream.server.route("/repo/a", status(500))
    upstream.server.route("/mirror/a", status(404))
    async with open_content_fetcher(workspace) as fetcher:
        with pytest.raises(HTTPStatusError) as info:
            await read_file(fetcher, "a")
        assert files_in_area(fetcher.temporary_area) == []
    assert (info.value.status_code, info.value.url) == (404, mirror.url("a"))
    [note] = info.value.__notes__
    assert "remote artifact 1 of 2 for 'a', remote 'upstream'" in note
    assert upstream.url("a") in note
    assert "HTTPStatusError" in note
    assert "500" in note
    assert (await content_artifacts(workspace))["a"].artifact is None


async def test_a_digest_mismatch_is_an_error_and_saves_nothing(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """Bytes that differ from the recorded sha256 fail the open; no file or row is kept."""
    await synced(any_workspace, upstream)
    tampered = b"CONTENT OF A"
    assert len(tampered) == len(FILES["a"])
    upstream.server.route("/repo/a", body(tampered))
    async with open_content_fetcher(any_workspace) as fetcher:
        with pytest.raises(DigestMismatch) as info:
            await read_file(fetcher, "a")
        assert files_in_area(fetcher.temporary_area) == []
    assert (info.value.expected, info.value.actual) == (sha256_of(FILES["a"]), sha256_of(tampered))
    assert (await content_artifacts(any_workspace))["a"].artifact is None
    assert not await any_workspace.storage.exists(sha256_of(tampered))
    async with any_workspace.open_store() as store:
        assert await store.find_artifacts([sha256_of(tampered), sha256_of(FILES["a"])]) == {}
    assert leftover_temporary_files(any_workspace) == []


async def test_unknown_repositories_versions_and_paths_are_not_found(
    workspace: Workspace, upstream: Upstream
) -> None:
    """Each miss is a ContentNotFound (a LookupError) naming what was asked for."""
    await synced(workspace, upstream)
    async with open_content_fetcher(workspace) as fetcher:
        with pytest.raises(ContentNotFound, match="no repository named 'nope'") as info:
            await read_file(fetcher, "a", repository="nope")
        assert (info.value.repository, info.value.version, info.value.relative_path) == (
            "nope",
            None,
            None,
        )
        with pytest.raises(ContentNotFound, match="'files' has no version 7"):
            await read_file(fetcher, "a", version=7)
        with pytest.raises(LookupError, match="version 0 of repository 'files' has no file 'a'"):
            await read_file(fetcher, "a", version=0)
        with pytest.raises(ContentNotFound) as info:
            await read_file(fetcher, "dir/nope")
        assert (info.value.repository, info.value.version, info.value.relative_path) == (
            "files",
            1,
            "dir/nope",
        )
    assert upstream.file_requests() == []


@pytest.mark.parametrize(
    "path",
    [
        "../a",
        "dir/../a",
        "dir/sub/../../a",
        "./a",
        "/a",
        "//a",
        "dir",
        "dir/",
        "%2e%2e/a",
        "dir%2Fb",
        "..%2Fa",
        "a\x00",
        "/etc/passwd",
        "../../../../etc/passwd",
    ],
)
async def test_path_traversal_attempts_are_simply_not_found(
    workspace: Workspace, upstream: Upstream, path: str
) -> None:
    """A path is looked up exactly in the database: anything but a saved path is not found."""
    await synced(workspace, upstream)
    async with open_content_fetcher(workspace) as fetcher:
        stored = str(workspace.storage.path_for(sha256_of(FILES["a"])))
        for attempt in (path, stored, "file://" + stored):
            with pytest.raises(ContentNotFound):
                await read_file(fetcher, attempt)
    assert upstream.file_requests() == []


async def test_a_file_url_for_an_http_remote_is_refused(
    workspace: Workspace, upstream: Upstream, tmp_path: Path
) -> None:
    """A remote artifact pointing an http remote at file:// is refused, the file never read."""
    await synced(workspace, upstream)
    secret = anyio.Path(tmp_path) / "secret"
    await secret.write_bytes(FILES["a"])
    [remote_artifact] = (await remote_artifacts(workspace))["a"]
    remote_artifact.url = f"file://{secret}"
    async with workspace.open_store() as store:
        await store.save_remote_artifacts([remote_artifact])
    async with open_content_fetcher(workspace) as fetcher:
        with pytest.raises(UnsafeURLError, match="refusing to download file://"):
            await read_file(fetcher, "a")
    assert (await content_artifacts(workspace))["a"].artifact is None


async def test_a_saved_file_is_read_whole_or_by_range(
    workspace: Workspace, upstream: Upstream
) -> None:
    """An immediate sync's file is read from storage, by range and in chunks; bad ranges fail."""
    await synced(workspace, upstream, DownloadPolicy.IMMEDIATE)
    requests = len(upstream.file_requests())
    data = FILES["dir/sub/c"]
    async with (
        open_content_fetcher(workspace) as fetcher,
        fetcher.open_path("files", None, "dir/sub/c") as opened,
    ):
        assert (opened.saved, opened.fetched_from, opened.size) == (True, None, len(data))
        assert opened.artifact.pk is not None
        assert await opened.read(3, 9) == data[3:9]
        assert await opened.read(len(data)) == b""
        assert [chunk async for chunk in opened.chunks(1, chunk_size=4)] == [
            data[i : i + 4] for i in range(1, len(data), 4)
        ]
        for start, end in [(-1, 3), (4, 3), (0, len(data) + 1), (len(data) + 1, None)]:
            with pytest.raises(ContentRangeError, match=f"it has {len(data)} bytes"):
                opened.chunks(start, end)
        with pytest.raises(ValueError, match="chunk_size >= 1"):
            opened.chunks(chunk_size=0)
    with pytest.raises(StorageError, match="was closed"):
        opened.chunks()
    assert len(upstream.file_requests()) == requests


async def test_a_file_saved_by_another_unit_is_served_without_a_download(
    workspace: Workspace, upstream: Upstream
) -> None:
    """A saved artifact with the expected sha256 serves the deferred file, and is linked."""
    await synced(workspace, upstream)
    other = Upstream(upstream.server, prefix="/other/")
    other.add("copy-of-a", FILES["a"])
    await sync(workspace, ManifestFirstStage(other.remote(name="other")), repository="other")
    async with open_content_fetcher(workspace) as fetcher:
        assert await read_file(fetcher, "a") == (FILES["a"], None)
    assert upstream.server.requests_for("/repo/a") == []
    artifact = (await content_artifacts(workspace))["a"].artifact
    assert artifact is not None
    assert artifact.sha256 == sha256_of(FILES["a"])


class _WithoutRemoteArtifacts(DeclarativeVersion):
    def pipeline_stages(self, new_version: NewVersion) -> list[Stage]:
        stages = super().pipeline_stages(new_version)
        return [stage for stage in stages if not isinstance(stage, RemoteArtifactSaver)]


async def test_a_deferred_file_without_remote_artifacts_is_not_found(
    workspace: Workspace, upstream: Upstream
) -> None:
    """A deferred file nothing says where to fetch is a ContentNotFound that says so."""
    upstream.add("a", FILES["a"])
    first = ManifestFirstStage(upstream.remote(policy=DownloadPolicy.ON_DEMAND))
    await _WithoutRemoteArtifacts(first, Repository(name="files"), workspace=workspace).acreate()
    async with open_content_fetcher(workspace) as fetcher:
        with pytest.raises(ContentNotFound, match="no remote artifact says where") as info:
            await read_file(fetcher, "a")
    assert info.value.relative_path == "a"


async def test_a_stored_file_removed_outside_stageline_is_a_storage_error(
    workspace: Workspace, upstream: Upstream
) -> None:
    """A saved artifact whose file is gone fails with StorageError naming the path."""
    await synced(workspace, upstream, DownloadPolicy.IMMEDIATE)
    await anyio.Path(workspace.storage.path_for(sha256_of(FILES["a"]))).unlink()
    async with open_content_fetcher(workspace) as fetcher:
        with pytest.raises(StorageError, match=r"'a' .* is missing from"):
            await read_file(fetcher, "a")


async def test_open_content_opens_one_file(workspace: Workspace, upstream: Upstream) -> None:
    """open_content() fetches, saves and closes everything it opened for one file."""
    await synced(workspace, upstream)
    async with open_content(workspace, "files", None, "dir/sub/c") as opened:
        assert await opened.read() == FILES["dir/sub/c"]
    async with open_content(workspace, "files", 1, "dir/sub/c") as opened:
        assert opened.fetched_from is None
    assert upstream.file_requests() == ["/repo/dir/sub/c"]
    assert leftover_temporary_files(workspace) == []


async def test_a_file_that_cannot_be_stored_fails_and_leaves_no_temporary_file(
    workspace: Workspace, upstream: Upstream
) -> None:
    """A fetched file the storage refuses is a StorageError; the download is removed."""
    await synced(workspace, upstream)
    # A plain file where the artifact's folder must go: the storage cannot put it there.
    folder = anyio.Path(workspace.storage.path_for(sha256_of(FILES["a"]))).parent
    await folder.parent.mkdir(parents=True, exist_ok=True)
    await folder.write_bytes(b"in the way")
    async with open_content_fetcher(workspace) as fetcher:
        with pytest.raises(StorageError, match="could not store"):
            await read_file(fetcher, "a")
        assert files_in_area(fetcher.temporary_area) == []
    assert (await content_artifacts(workspace))["a"].artifact is None
    async with workspace.open_store() as store:
        assert await store.find_artifacts([sha256_of(FILES["a"])]) == {}


async def test_the_url_a_file_was_fetched_from_is_shown_without_its_password(
    workspace: Workspace, upstream: Upstream
) -> None:
    """fetched_from (and the opened file's repr) mask the credentials of the url."""
    await synced(workspace, upstream)
    [remote_artifact] = (await remote_artifacts(workspace))["a"]
    remote_artifact.url = remote_artifact.url.replace("http://", "http://alice:s3cret@")
    async with workspace.open_store() as store:
        await store.save_remote_artifacts([remote_artifact])
    async with (
        open_content_fetcher(workspace) as fetcher,
        fetcher.open_path("files", None, "a") as opened,
    ):
        assert opened.fetched_from == upstream.url("a").replace("http://", "http://alice:[secure]@")
        assert "s3cret" not in repr(opened)
