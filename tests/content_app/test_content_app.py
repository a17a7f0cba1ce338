"""The content app over real HTTP: files, ranges, validators, indexes, on-demand fetching."""

from __future__ import annotations

import threading
from functools import partial

import anyio
import anyio.to_thread
import httpx
import pytest

from stageline import ContentServerError, Workspace
from stageline.content_app import ContentApp, serve
from stageline.models import DownloadPolicy
from stageline.sync import open_content_fetcher

from ..download._servers import body
from ..sync._on_demand_support import FILES, gated, synced
from ..sync._plugin import Upstream, sha256_of
from ..sync._support import content_artifacts, leftover_temporary_files
from ._support import raw_request, serving, wait_for_requests

pytestmark = pytest.mark.anyio

DATA = bytes(range(256)) * 40  # 10 240 bytes


async def with_big_file(workspace: Workspace, upstream: Upstream) -> None:
    """FILES and ``big.bin`` (DATA), synced immediately into repository "files"."""
    upstream.add("big.bin", DATA)
    await synced(workspace, upstream, DownloadPolicy.IMMEDIATE)


async def test_a_file_whole_with_its_length_type_and_etag(
    workspace: Workspace, upstream: Upstream
) -> None:
    """GET sends the bytes with Content-Length, a type, and the sha256 as ETag; HEAD the same
    headers without a body."""
    await with_big_file(workspace, upstream)
    async with serving(workspace) as client:
        response = await client.get("/files/latest/big.bin")
        assert response.status_code == 200
        assert response.content == DATA
        assert response.headers["content-length"] == str(len(DATA))
        assert response.headers["etag"] == f'"{sha256_of(DATA)}"'
        assert response.headers["accept-ranges"] == "bytes"
        assert response.headers["content-type"] == "application/octet-stream"
        by_number = await client.get("/files/1/dir/sub/c")
        assert (by_number.status_code, by_number.content) == (200, FILES["dir/sub/c"])
        head = await client.head("/files/1/big.bin")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(DATA))
        assert head.headers["etag"] == response.headers["etag"]


async def test_byte_ranges(workspace: Workspace, upstream: Upstream) -> None:
    """A single range is a 206 with Content-Range; suffix and open ranges work; a range past
    the end is a 416; several ranges, or a stale If-Range, get the whole file."""
    await with_big_file(workspace, upstream)
    size = len(DATA)
    async with serving(workspace) as client:

        async def get(range_header: str, **headers: str) -> httpx.Response:
            return await client.get("/files/1/big.bin", headers={"range": range_header, **headers})

        for header, start, end in [
            ("bytes=0-0", 0, 1),
            ("bytes=100-199", 100, 200),
            ("bytes=10000-", 10000, size),
            ("bytes=-40", size - 40, size),
            ("bytes=10200-99999", 10200, size),
            ("bytes=-99999", 0, size),
        ]:
            response = await get(header)
            assert response.status_code == 206, header
            assert response.content == DATA[start:end], header
            assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
            assert response.headers["content-length"] == str(end - start)
        for header in ["bytes=10240-", "bytes=99999-100000", "bytes=-0"]:
            response = await get(header)
            assert response.status_code == 416, header
            assert response.headers["content-range"] == f"bytes */{size}"
            assert response.headers.get_list("x-content-type-options") == ["nosniff"]
        for header in ["bytes=0-1,5-6", "items=0-1", "bytes=5-2", "bytes=x-"]:
            response = await get(header)
            assert (response.status_code, response.content) == (200, DATA), header
        stale = await get("bytes=0-1", **{"if-range": '"0000"'})
        assert (stale.status_code, stale.content) == (200, DATA)
        etag = f'"{sha256_of(DATA)}"'
        fresh = await get("bytes=0-1", **{"if-range": etag})
        assert (fresh.status_code, fresh.content) == (206, DATA[:2])
        head = await client.head("/files/1/big.bin", headers={"range": "bytes=1-2"})
        assert (head.status_code, head.content) == (206, b"")
        assert head.headers["content-length"] == "2"


async def test_if_none_match_is_a_304(workspace: Workspace, upstream: Upstream) -> None:
    """If-None-Match with the file's ETag (or *, or a weak copy of it) answers 304, no body;
    another tag gets the file."""
    await with_big_file(workspace, upstream)
    etag = f'"{sha256_of(FILES["a"])}"'
    async with serving(workspace) as client:
        for header in [etag, f'"other", {etag}', f"W/{etag}", "*"]:
            response = await client.get("/files/1/a", headers={"if-none-match": header})
            assert response.status_code == 304, header
            assert response.content == b""
            assert response.headers["etag"] == etag
        response = await client.get("/files/1/a", headers={"if-none-match": '"other"'})
        assert (response.status_code, response.content) == (200, FILES["a"])


async def test_index_pages(workspace: Workspace, upstream: Upstream) -> None:
    """The repositories, versions and folders are listed as HTML with relative links; a
    folder named without its slash is redirected to it."""
    await with_big_file(workspace, upstream)
    async with serving(workspace) as client:
        root = await client.get("/")
        assert root.status_code == 200
        assert root.headers["content-type"] == "text/html; charset=utf-8"
        assert '<a href="./files/">files/</a>' in root.text
        versions = await client.get("/files/")
        for name in ["latest/", "1/", "0/"]:
            assert f'<a href="./{name}">{name}</a>' in versions.text
        top = await client.get("/files/latest/")
        assert top.status_code == 200
        assert '<a href="./a">a</a></td><td>12</td>' in top.text
        assert '<a href="./big.bin">big.bin</a></td><td>10240</td>' in top.text
        assert '<a href="./dir/">dir/</a>' in top.text
        assert 'href="./sub/"' not in top.text
        assert 'href="./b"' not in top.text
        folder = await client.get("/files/1/dir/")
        assert '<a href="./b">b</a>' in folder.text
        assert '<a href="./sub/">sub/</a>' in folder.text
        assert '<a href="../">../</a>' in folder.text
        for path, location in [
            ("/files", "/files/"),
            ("/files/1", "/files/1/"),
            ("/files/latest/dir", "/files/latest/dir/"),
            ("/files/1/dir/sub", "/files/1/dir/sub/"),
        ]:
            response = await client.get(path)
            assert (response.status_code, response.headers["location"]) == (301, location)
        followed = await client.get("/files/1/dir/sub", follow_redirects=True)
        assert '<a href="./c">c</a>' in followed.text
        head = await client.head("/files/1/")
        assert (head.status_code, head.content) == (200, b"")


async def test_index_names_are_escaped_and_deferred_sizes_announced(
    workspace: Workspace, upstream: Upstream
) -> None:
    """Names with markup characters are HTML-escaped and their links percent-encoded; a
    deferred file shows the size upstream announced."""
    upstream.add("<b>&\"x'.txt", b"tricky")
    upstream.add("javascript:alert(1)", b"js")
    await synced(workspace, upstream, DownloadPolicy.ON_DEMAND)
    async with serving(workspace) as client:
        page = (await client.get("/files/1/")).text
        assert "<b>" not in page
        assert (
            '<a href="./%3Cb%3E%26%22x%27.txt">&lt;b&gt;&amp;&quot;x&#x27;.txt</a></td>'
            "<td>6 (on demand)</td>" in page
        )
        assert '<a href="./javascript%3Aalert%281%29">javascript:alert(1)</a>' in page


async def test_unknown_repositories_versions_and_paths_are_404(
    workspace: Workspace, upstream: Upstream
) -> None:
    """Unknown repositories, versions, files and folders, and malformed versions, are 404s;
    methods other than GET and HEAD are 405s."""
    await with_big_file(workspace, upstream)
    async with serving(workspace) as client:
        for path in [
            "/nope/",
            "/nope/latest/a",
            "/files/2/a",
            "/files/2/",
            "/files/01/a",
            "/files/-1/a",
            "/files/99999999999/a",
            "/files/newest/a",
            "/files/1/missing",
            "/files/1/missing/",
            "/files/1/a/",
            "/files/0/a",
            "/files/1/dir/b/x",
        ]:
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
            assert response.headers["x-content-type-options"] == "nosniff"
        response = await client.post("/files/1/a")
        assert (response.status_code, response.headers["allow"]) == (405, "GET, HEAD")


async def test_paths_outside_the_version_are_never_reached(
    workspace: Workspace, upstream: Upstream
) -> None:
    """Dot segments (raw or encoded), encoded slashes, backslashes, NUL, absolute and
    storage paths are refused: a 404 (or h11's 400 for bytes a request line may not hold),
    never a file from outside the version."""
    await with_big_file(workspace, upstream)
    secret = b"secret outside the version"
    await anyio.Path(workspace.home / "secret").write_bytes(secret)
    artifact = (await content_artifacts(workspace))["a"].artifact
    assert artifact is not None
    assert artifact.file is not None
    storage_path = artifact.file.relative_to(workspace.home).as_posix()
    async with serving(workspace) as client:
        url = str(client.base_url)
        not_found = [
            "/files/1/../../secret",
            "/files/1/dir/../a",
            "/files/1/./a",
            "/files/1/%2e%2e/%2e%2e/secret",
            "/files/1/%2E%2E%2F%2E%2E%2Fsecret",
            "/files/1/..%2f..%2fsecret",
            "/files/1/dir%2fb",
            "/files/1/dir%5cb",
            "/files/1/a%00",
            "/files/1/%00",
            "/files/1//a",
            "/files/1/%2fetc%2fpasswd",
            "/files/1//etc/passwd",
            "/files%2f1/a",
            "/%2e%2e/secret",
            "/files/latest/dir/sub/%2e%2e/%2e%2e/a",
            f"/files/1/{storage_path}",
            f"/files/1/{artifact.file}",
            "/files/1/%ff",
        ]
        for target in not_found:
            status, received = await raw_request(url, target)
            assert status == 404, target
            assert secret not in received, target
            assert FILES["a"] not in received, target
        for target in ["/files/1/dir\\b", "/files/1/a\x00", "/files/1/a b"]:
            status, received = await raw_request(url, target)
            assert status in (400, 404), target
            assert secret not in received, target
        # The same file by its real name, to show the refusals above are about the path.
        status, received = await raw_request(url, "/files/1/dir/b")
        assert status == 200
        assert received.endswith(FILES["dir/b"])


async def test_an_on_demand_file_is_fetched_once_under_concurrent_requests_and_saved(
    workspace: Workspace, upstream: Upstream
) -> None:
    """Concurrent GETs of a deferred on_demand file all get its bytes from one upstream
    request; the file is saved, and later GETs read it from the storage."""
    await synced(workspace, upstream, DownloadPolicy.ON_DEMAND)
    gate = threading.Event()
    upstream.server.route("/repo/dir/b", gated(FILES["dir/b"], gate))
    bodies: list[bytes] = []
    async with serving(workspace) as client:

        async def get() -> None:
            response = await client.get("/files/latest/dir/b")
            assert response.status_code == 200
            bodies.append(response.content)

        try:
            async with anyio.create_task_group() as tasks:
                for _ in range(8):
                    tasks.start_soon(get)
                await anyio.to_thread.run_sync(partial(wait_for_requests, upstream, 1))
                await anyio.wait_all_tasks_blocked()
                gate.set()
        finally:
            gate.set()
        assert bodies == [FILES["dir/b"]] * 8
        again = await client.get("/files/latest/dir/b")
        assert again.content == FILES["dir/b"]
    assert len(upstream.server.requests_for("/repo/dir/b")) == 1
    saved = (await content_artifacts(workspace))["dir/b"].artifact
    assert saved is not None
    assert saved.sha256 == sha256_of(FILES["dir/b"])
    assert leftover_temporary_files(workspace) == []


async def test_a_streamed_file_is_fetched_for_each_request_and_never_saved(
    workspace: Workspace, upstream: Upstream
) -> None:
    """Each GET of a streamed file downloads it again; nothing is saved or left behind."""
    await synced(workspace, upstream, DownloadPolicy.STREAMED)
    async with serving(workspace) as client:
        for _ in range(2):
            response = await client.get("/files/1/a")
            assert (response.status_code, response.content) == (200, FILES["a"])
        ranged = await client.get("/files/1/a", headers={"range": "bytes=-1"})
        assert (ranged.status_code, ranged.content) == (206, FILES["a"][-1:])
    assert len(upstream.server.requests_for("/repo/a")) == 3
    assert (await content_artifacts(workspace))["a"].artifact is None
    assert leftover_temporary_files(workspace) == []


async def test_a_failed_fetch_is_a_502(workspace: Workspace, upstream: Upstream) -> None:
    """A deferred file whose upstream bytes are wrong is a 502, not a wrong body."""
    await synced(workspace, upstream, DownloadPolicy.ON_DEMAND)
    upstream.server.route("/repo/a", body(b"tampered!!!!"))  # the size of FILES["a"]
    async with serving(workspace) as client:
        response = await client.get("/files/1/a")
        assert response.status_code == 502
        assert b"tampered" not in response.content
    assert (await content_artifacts(workspace))["a"].artifact is None


async def test_serve_on_a_taken_port_fails_clearly(workspace: Workspace) -> None:
    """Serving on a port in use is a ContentServerError naming the address."""
    async with open_content_fetcher(workspace) as fetcher, serving(workspace) as client:
        port = client.base_url.port
        with pytest.raises(ContentServerError, match=f"port {port}"):
            await serve(ContentApp(fetcher), port=port)


async def test_a_head_of_a_deferred_file_downloads_nothing(
    workspace: Workspace, upstream: Upstream
) -> None:
    """HEAD of a deferred file answers with the size and sha256 upstream announced, without
    fetching it; the GET after it fetches."""
    await synced(workspace, upstream, DownloadPolicy.ON_DEMAND)
    data = FILES["dir/b"]
    async with serving(workspace) as client:
        head = await client.head("/files/1/dir/b")
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-length"] == str(len(data))
        assert head.headers["etag"] == f'"{sha256_of(data)}"'
        ranged = await client.head("/files/1/dir/b", headers={"range": "bytes=-4"})
        assert ranged.status_code == 206
        assert (
            ranged.headers["content-range"] == f"bytes {len(data) - 4}-{len(data) - 1}/{len(data)}"
        )
        assert upstream.file_requests() == []
        assert (await content_artifacts(workspace))["dir/b"].artifact is None
        response = await client.get("/files/1/dir/b")
        assert (response.status_code, response.content) == (200, data)
    assert upstream.file_requests() == ["/repo/dir/b"]


async def test_cancelling_serve_stops_the_server_cleanly(workspace: Workspace) -> None:
    """Cancelling serve(), even while it is stopping, ends it cleanly on either backend:
    nothing is raised and its port no longer answers."""
    async with open_content_fetcher(workspace) as fetcher:
        for stopping_first in (False, True):
            shutdown = anyio.Event()
            with anyio.fail_after(30):
                async with anyio.create_task_group() as tasks:
                    url = await tasks.start(partial(serve, ContentApp(fetcher), shutdown=shutdown))
                    async with httpx.AsyncClient(base_url=url) as client:
                        assert (await client.get("/")).status_code == 200
                    if stopping_first:
                        shutdown.set()  # the server is told to stop...
                    tasks.cancel_scope.cancel()  # ...when the cancellation lands
            async with httpx.AsyncClient() as client:
                with pytest.raises(httpx.ConnectError):
                    await client.get(url)


async def test_on_sqlite_and_postgresql(any_workspace: Workspace, upstream: Upstream) -> None:
    """Files, folder indexes and 404s are the same on either database."""
    await synced(any_workspace, upstream, DownloadPolicy.ON_DEMAND)
    async with serving(any_workspace) as client:
        index = await client.get("/files/latest/dir/")
        assert '<a href="./b">b</a>' in index.text
        assert '<a href="./sub/">sub/</a>' in index.text
        response = await client.get("/files/1/dir/sub/c")
        assert (response.status_code, response.content) == (200, FILES["dir/sub/c"])
        assert (await client.get("/files/1/dir/su")).status_code == 404
        assert (await client.get("/files/1/di")).status_code == 404
