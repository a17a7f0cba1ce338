"""The ASGI application: repository versions over HTTP, through a :class:`ContentFetcher`."""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Final

import anyio

from .._exceptions import ContentNotFound, DownloadError, StagelineError
from ..models import ContentArtifact, RepositoryVersion
from ..sync import ContentFetcher, OpenedContent
from ._index import Entry as IndexEntry
from ._index import folder_entries, page_end, page_start, render_entries
from ._ranges import UNSATISFIABLE, etag_matches, parse_range
from ._routes import LATEST, Route, parse_path, quote_path

__all__ = ["ContentApp"]

logger = logging.getLogger("stageline.content_app")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_HTML: Final = "text/html; charset=utf-8"
_TEXT: Final = "text/plain; charset=utf-8"
# Files come from upstream: a browser must not run one as a page of this origin.
_FILE_HEADERS: Final = (
    ("accept-ranges", "bytes"),
    ("x-content-type-options", "nosniff"),
    ("content-security-policy", "sandbox"),
)


class _Request:
    """One HTTP request and its response, sent through ASGI."""

    def __init__(self, scope: Scope, send: Send) -> None:
        self.scope = scope
        self._send = send
        self.head = scope["method"] == "HEAD"
        self.started = False
        self.headers: dict[str, str] = {}
        for name, value in scope.get("headers", []):
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            # Repeated headers are one comma-separated list (RFC 9110, 5.3).
            self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    @property
    def raw_path(self) -> bytes:
        raw = self.scope.get("raw_path")
        if raw is None:
            return urllib.parse.quote(self.scope["path"]).encode("ascii")
        return bytes(raw).split(b"?", 1)[0]

    def url_path(self, *segments: str, folder: bool) -> str:
        """The absolute path of ``segments`` on this server (mounted at its root_path)."""
        path = "/" + quote_path(*segments) if segments else ""
        return f"{self.scope.get('root_path', '')}{path}{'/' if folder else ''}"

    async def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.started = True
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers
                ],
            }
        )

    async def body(self, data: bytes, *, more: bool = False) -> None:
        if self.head and data:
            return
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def simple(
        self, status: int, text: str, *, headers: list[tuple[str, str]] | None = None
    ) -> None:
        """A whole response with a short plain-text body."""
        data = text.encode("utf-8") + b"\n"
        await self.start(
            status,
            [
                ("content-type", _TEXT),
                ("content-length", str(len(data))),
                # The text may quote the path asked for: never to be read as a page.
                ("x-content-type-options", "nosniff"),
                *(headers or []),
            ],
        )
        await self.body(data)

    async def not_found(self, why: str) -> None:
        await self.simple(404, f"404 Not Found: {why}")

    async def redirect(self, location: str) -> None:
        await self.simple(301, f"moved to {location}", headers=[("location", location)])


class ContentApp:
    """An ASGI application serving repository versions, read through a ContentFetcher.

    Routes (``GET`` and ``HEAD``; anything else is a 405):

    - ``/``: an HTML index of the repositories;
    - ``/{repository}/``: an HTML index of its versions, and ``latest``;
    - ``/{repository}/{version}/`` and ``/{repository}/{version}/{folder}/``: an HTML
      index of the folder; ``{version}`` is a number or ``latest``;
    - ``/{repository}/{version}/{relative_path}``: the file, with ``Content-Length``,
      an ``ETag`` made of its sha256 (``If-None-Match`` answers 304), and single byte
      ``Range`` requests (206, or 416 when no byte of the file is asked for; several
      ranges get the whole file). A deferred file is fetched from its remote first
      (see :class:`~stageline.sync.ContentFetcher`: saved for ``on_demand`` remotes,
      not for ``streamed`` ones). A ``HEAD`` of a deferred file is answered from the
      size and sha256 its remote artifact announces, without fetching it.

    A repository, version or folder named without its trailing ``/`` is redirected
    (301) to it. Unknown repositories, versions and paths are 404s; so is any path with
    a segment that no saved relative path could hold (``..``, ``.``, an encoded ``/``, a
    backslash, NUL or another control character, an empty segment). Paths are looked up
    in the database and files read by their sha256: nothing a client sends reaches the
    filesystem. A failed download is a 502; a damaged storage or a failing database a
    500, logged to the ``stageline.content_app`` logger.

    The app uses the fetcher it is given and closes nothing; it runs on any ASGI server,
    on asyncio or Trio (see :func:`serve`). When the client goes away, its request's
    work (a download included) is cancelled.

    Args:
        fetcher: an open fetcher, e.g. from :func:`~stageline.sync.open_content_fetcher`.
    """

    def __init__(self, fetcher: ContentFetcher) -> None:
        self.fetcher = fetcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = _Request(scope, send)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_cancel_on_disconnect, receive, tasks.cancel_scope)
            await self._answer(request)
            tasks.cancel_scope.cancel()

    async def _answer(self, request: _Request) -> None:
        try:
            if request.scope["method"] not in ("GET", "HEAD"):
                await request.simple(
                    405, "405 Method Not Allowed: use GET or HEAD", headers=[("allow", "GET, HEAD")]
                )
                return
            route = parse_path(request.raw_path)
            if route is None:
                await request.not_found("no such path")
            else:
                await self._route(request, route)
        except ContentNotFound as exc:
            if request.started:
                raise
            await request.not_found(str(exc))
        except DownloadError as exc:
            logger.warning("%s %r: %s", request.scope["method"], request.scope["path"], exc)
            if request.started:
                raise
            await request.simple(502, f"502 Bad Gateway: {exc}")
        except StagelineError as exc:
            logger.error("%s %r: %s", request.scope["method"], request.scope["path"], exc)
            if request.started:
                raise
            await request.simple(500, f"500 Internal Server Error: {type(exc).__name__}")

    async def _route(self, request: _Request, route: Route) -> None:
        if route.repository is None:
            await self._repositories(request)
            return
        if route.version is None:
            if not route.folder:
                await request.redirect(request.url_path(route.repository, folder=True))
            else:
                await self._versions(request, route.repository)
            return
        version = await self.fetcher.find_version(route.repository, route.number)
        if not route.path:
            if not route.folder:
                await request.redirect(
                    request.url_path(route.repository, route.version, folder=True)
                )
            else:
                await self._folder(request, route, version)
            return
        if route.folder:
            await self._folder(request, route, version)
            return
        try:
            content_artifact = await self.fetcher.find(version, route.path)
        except ContentNotFound:
            if not await self.fetcher.store.list_content_artifacts(
                version, prefix=route.path + "/", limit=1
            ):
                raise
            segments = (route.repository, route.version, *route.path.split("/"))
            await request.redirect(request.url_path(*segments, folder=True))
            return
        if request.head and content_artifact.artifact is None:
            announced = await self._announced(content_artifact)
            if announced is not None:
                # What upstream announced answers a HEAD: no download for it.
                size, sha256 = announced
                await _send_file(request, route.path, size, sha256, None)
                return
        async with self.fetcher.open(content_artifact) as opened:
            await _send_file(request, route.path, opened.size, opened.sha256, opened)

    async def _announced(self, content_artifact: ContentArtifact) -> tuple[int, str] | None:
        """The size and sha256 of a deferred file, as the remote artifact that a fetch
        would try first announces them; None when it does not say both."""
        remote_artifacts = await self.fetcher.store.find_remote_artifacts([content_artifact])
        if not remote_artifacts:
            return None
        first = remote_artifacts[0]
        if first.size is None or first.sha256 is None:
            return None
        return first.size, first.sha256

    async def _repositories(self, request: _Request) -> None:
        repositories = await self.fetcher.store.list_repositories()
        entries = [IndexEntry(repository.name, folder=True) for repository in repositories]
        await _send_page(request, "/", entries, parent=False)

    async def _versions(self, request: _Request, name: str) -> None:
        latest = await self.fetcher.find_version(name)
        versions = await self.fetcher.store.list_versions(latest.repository)
        entries = [IndexEntry(LATEST, folder=True)]
        entries.extend(IndexEntry(str(v.number), folder=True) for v in reversed(versions))
        await _send_page(request, f"/{name}/", entries, parent=True)

    async def _folder(self, request: _Request, route: Route, version: RepositoryVersion) -> None:
        async with contextlib.aclosing(
            folder_entries(self.fetcher.store, version, route.path)
        ) as pages:
            first = await anext(pages, None)
            if first is None and route.path:
                raise ContentNotFound(
                    f"version {version.number} of repository {version.repository.name!r} "
                    f"has no folder {route.path!r}",
                    repository=version.repository.name,
                    version=version.number,
                    relative_path=route.path,
                )
            title = f"/{route.repository}/{route.version}/" + (
                f"{route.path}/" if route.path else ""
            )
            await _send_page(request, title, first or [], pages, parent=True)


async def _send_page(
    request: _Request,
    title: str,
    entries: list[IndexEntry],
    more: AsyncIterator[list[IndexEntry]] | None = None,
    *,
    parent: bool,
) -> None:
    """An index page, streamed: ``more`` entries are read page by page while it is sent."""
    await request.start(200, [("content-type", _HTML), ("cache-control", "no-cache")])
    await request.body(page_start(title, parent=parent).encode("utf-8"), more=True)
    await request.body(render_entries(entries).encode("utf-8"), more=True)
    if more is not None:
        async for page in more:
            await request.body(render_entries(page).encode("utf-8"), more=True)
    await request.body(page_end().encode("utf-8"))


async def _send_file(
    request: _Request,
    relative_path: str,
    size: int,
    sha256: str,
    opened: OpenedContent | None,
) -> None:
    """The file's response; ``opened`` is None for a HEAD answered without opening it."""
    etag = f'"{sha256}"'
    content_type = mimetypes.guess_type(relative_path)[0] or "application/octet-stream"
    headers = [("etag", etag), *_FILE_HEADERS]
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and etag_matches(if_none_match, etag, weak=True):
        await request.start(304, headers)
        await request.body(b"")
        return
    start, end, status = 0, size, 200
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if range_header is not None and (if_range is None or etag_matches(if_range, etag, weak=False)):
        wanted = parse_range(range_header, size)
        if wanted == UNSATISFIABLE:
            await request.simple(
                416,
                f"416 Range Not Satisfiable: the file has {size} bytes",
                headers=[
                    ("content-range", f"bytes */{size}"),
                    ("etag", etag),
                    ("accept-ranges", "bytes"),
                ],
            )
            return
        if wanted is not None:
            start, end = wanted
            status = 206
            headers.append(("content-range", f"bytes {start}-{end - 1}/{size}"))
    await request.start(
        status,
        [("content-type", content_type), ("content-length", str(end - start)), *headers],
    )
    if not request.head and opened is not None:
        async for chunk in opened.chunks(start, end):
            await request.body(chunk, more=True)
    await request.body(b"")


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancel the request's work when its client disconnects."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to set up or tear down: the fetcher belongs to whoever made the app."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
