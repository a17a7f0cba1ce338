"""Which downloader handles a url, and the per-remote state downloaders share.

A :class:`DownloaderFactory` keeps, for each remote (by its name, else its saved primary
key), a :class:`RemoteSession`: the HTTP client and its connection pool, the
concurrency limiter and the rate limiter. Open one around a sync, hand it to what
downloads, and every download from a remote shares them; the clients are closed when
the block ends::

    async with DownloaderFactory() as factory:
        result = await factory.get_downloader(remote, url=url).run()

:func:`current_downloader_factory` finds the factory open in the current context, or
else a factory kept for the current event loop run, which shares limiters but gives each
download its own short-lived client (closed when the download ends), since nothing would
close a pooled one.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import ssl
import urllib.parse
import weakref
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Mapping,
    MutableMapping,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeAlias

import anyio
import anyio.lowlevel
import httpx

from .._about import VERSION
from .._declarative import DownloaderFactoryLike, downloader_factory_var
from .._exceptions import (
    DownloaderFactoryClosed,
    DownloadError,
    InvalidValueError,
    UnsafeURLError,
    redact_url,
)
from ._base import BaseDownloader
from ._retry import RateLimiter, RetrySettings
from ._validation import DEFAULT_ALLOWED_DIGESTS, DEFAULT_BATCH_SIZE, check_allowed_digests

if TYPE_CHECKING:
    from ..models import Remote

__all__ = [
    "DownloaderClass",
    "DownloaderFactory",
    "RemoteSession",
    "current_downloader_factory",
]


#: What a factory calls to build a downloader: a class (or any callable) called with the
#: keyword arguments ``url``, ``remote``, ``factory``, ``expected_digests``,
#: ``expected_size`` and whatever extra keyword arguments ``get_downloader`` received.
#: :class:`~stageline.download.HttpDownloader` and
#: :class:`~stageline.download.FileDownloader` follow it; so must a plugin's downloader
#: registered with :meth:`DownloaderFactory.register`.
DownloaderClass: TypeAlias = Callable[..., BaseDownloader]


#: The schemes an http or https remote fetches: a mirror or CDN may move between the two.
_HTTP_FAMILY: frozenset[str] = frozenset({"http", "https"})

# RFC 3986 scheme syntax; used for the remote's own url, which is never refused for being
# malformed here (the url of a download is checked with urlsplit, which is stricter).
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


def _scheme_of(url: str) -> str:
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else ""


def _remote_label(remote: Remote) -> str:
    url = redact_url(remote.url)
    return f"{remote.name!r} ({url})" if remote.name else url


#: The headers a request keeps when a redirect takes it to another origin: what every
#: request carries (stageline's own defaults among them), never what authenticates it.
_KEPT_ACROSS_ORIGINS: frozenset[str] = frozenset(
    {"host", "user-agent", "accept", "accept-encoding", "connection", "cookie"}
)

#: The request extension in which the first request of a download records its url and
#: headers; httpx carries a request's extensions over to its redirects.
_FIRST_REQUEST = "stageline.first_request"


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    # httpx normalises a default port to None, so http://h and http://h:80 are equal.
    return (url.scheme, url.host, url.port)


def _identity(remote: Remote) -> Hashable | None:
    """What makes two Remote objects the same remote: its (unique) name, else its saved
    primary key; None for an unsaved, unnamed remote, known only as a Python object.

    The name comes first because it does not change when a sync saves the remote: a
    remote whose downloads began before ``RemoteArtifactSaver`` gave it a pk keeps its
    session (and its concurrency and rate limits) afterwards. The store refuses to save a
    remote without a name, so every saved remote has one.
    """
    if remote.name:
        return ("name", remote.name)
    if remote.pk is not None:
        return ("pk", remote.pk)
    return None


def _user_agent() -> str:

    return f"stageline/{VERSION}"


class RemoteSession:
    """The state every download from one remote shares (within one factory).

    One remote is one name, else one saved primary key; an unsaved, unnamed remote is
    one Python object. The first ``Remote`` object a factory sees for a remote configures
    its session (client settings, limits).

    Attributes:
        remote: the remote (the first object seen for it).
        limiter: at most ``remote.download_concurrency`` downloads hold it at once.
        rate_limiter: spaces request starts when ``remote.rate_limit`` is set, else None.
    """

    def __init__(self, remote: Remote, *, pool_client: bool) -> None:
        self.remote = remote
        self.limiter = anyio.CapacityLimiter(remote.download_concurrency)
        self.rate_limiter = RateLimiter(remote.rate_limit) if remote.rate_limit else None
        self._pool_client = pool_client
        self._client: httpx.AsyncClient | None = None
        self._client_lock = anyio.Lock()
        self._closed = False
        self._ssl_contexts: tuple[ssl.SSLContext, ssl.SSLContext | None] | None = None
        self._slot = _Slot(self.limiter, self.rate_limiter)

    def slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold one of the remote's concurrency slots, then wait for the rate limit.

        Use as ``async with session.slot():``. Every HTTP request (each retry too) is made
        inside a slot.
        """
        return self._slot

    @contextlib.asynccontextmanager
    async def client(self, *, url: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
        """The HTTP client configured from the remote's settings.

        Inside an open factory this is one pooled client per remote, closed by the
        factory; otherwise a client made for this use and closed when the block ends.

        Args:
            url: the url the client is used for, named in the error raised when the
                factory is closed.

        Raises:
            DownloadError: when the remote's TLS files cannot be loaded, its proxy url
                is malformed or unsupported, or a header value is not ASCII.
            DownloaderFactoryClosed: (a ``RuntimeError``) when the factory was closed
                before the block, or while it ran (whatever the block was doing with the
                client failed because of the close; that error is the ``__cause__``).
        """
        if not self._pool_client:
            async with await self._new_client() as client:
                yield client
            return
        client = await self._pooled_client(url)
        try:
            yield client
        except Exception as exc:
            if not self._closed:
                raise
            # Closing the client severed the block's connections: the read error, cut
            # body or refused request the block saw was the close, not the network, and
            # must not be retried or reported as a network failure.
            raise DownloaderFactoryClosed(self._closed_while_running(url)) from exc

    async def _pooled_client(self, url: str | None) -> httpx.AsyncClient:
        client = self._client
        if client is None and not self._closed:
            # Several downloads start at once: only the first makes the client.
            async with self._client_lock:
                client = self._client
                if client is None and not self._closed:
                    client = await self._new_client()
                    if self._is_closed():
                        # The factory closed while the client was being made and will
                        # close nothing more: a client used now would never be closed.
                        await client.aclose()
                        raise DownloaderFactoryClosed(self._closed_while_running(url))
                    self._client = client
        if client is None or self._closed:
            # A new pooled client now would be one that nothing ever closes.
            raise DownloaderFactoryClosed(
                f"cannot download {self._what(url)}: its DownloaderFactory is closed; make "
                "downloaders inside an open factory and run them before it closes"
            )
        return client

    def _is_closed(self) -> bool:
        # A call rather than the attribute where an await may have changed it: mypy
        # keeps ``self._closed`` narrowed across awaits.
        return self._closed

    def _what(self, url: str | None) -> str:
        return redact_url(url) if url is not None else f"from {redact_url(self.remote.url)}"

    def _closed_while_running(self, url: str | None) -> str:
        return (
            f"the DownloaderFactory was closed while downloading {self._what(url)}; keep "
            "the factory open until every download made in it has finished (open it "
            "around the task group that runs them)"
        )

    async def aclose(self) -> None:
        """Close the pooled client, if one was made; no new one is made afterwards.

        Blocks still using the client fail with :class:`DownloaderFactoryClosed` (see
        :meth:`client`).
        """
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _new_client(self) -> httpx.AsyncClient:
        remote = self.remote
        if self._ssl_contexts is None:
            # Loading CA bundles reads files: do it once per remote, off the event loop.
            self._ssl_contexts = await anyio.to_thread.run_sync(self._make_ssl_contexts)
        ssl_context, proxy_ssl_context = self._ssl_contexts
        proxy: httpx.Proxy | None = None
        if remote.proxy_url:
            auth = None
            if remote.proxy_username is not None:
                auth = (remote.proxy_username, remote.proxy_password or "")
            try:
                # An https proxy is verified like the remote's servers (ca_cert,
                # tls_validation); left to httpx, it would get the default bundle.
                proxy = httpx.Proxy(remote.proxy_url, auth=auth, ssl_context=proxy_ssl_context)
            except (ValueError, httpx.InvalidURL) as exc:
                raise DownloadError(
                    f"remote {_remote_label(remote)}: proxy_url "
                    f"{redact_url(remote.proxy_url)!r} is not usable ({exc}); give an "
                    "http:// or https:// url",
                    url=remote.proxy_url,
                ) from exc
        auth_basic = None
        if remote.username is not None:
            auth_basic = httpx.BasicAuth(remote.username, remote.password or "")
        read = remote.sock_read_timeout
        timeout = httpx.Timeout(
            connect=remote.connect_timeout,
            read=read,
            write=read,
            # Downloads wait for the concurrency limiter, not for the pool, so a pool wait
            # only happens when the client is shared with other code.
            pool=remote.connect_timeout,
        )
        headers = {"User-Agent": _user_agent(), "Accept-Encoding": "identity"}
        headers.update(remote.headers)
        request_hooks: list[Callable[[httpx.Request], Awaitable[None]]] = [
            self._keep_credentials_at_their_origin
        ]
        if self._pool_client:
            request_hooks.insert(0, self._refuse_once_closed)
        try:
            return httpx.AsyncClient(
                auth=auth_basic,
                headers=headers,
                verify=ssl_context,
                proxy=proxy,
                timeout=timeout,
                limits=httpx.Limits(
                    max_connections=remote.download_concurrency,
                    max_keepalive_connections=remote.download_concurrency,
                ),
                follow_redirects=True,
                event_hooks={"request": request_hooks},
                # The remote's settings are the whole configuration: no proxy, CA bundle or
                # credentials picked up from the environment or ~/.netrc behind its back.
                trust_env=False,
            )
        except (ImportError, ValueError) as exc:
            # e.g. a socks5:// proxy_url without socksio installed, or a header value
            # that is not ASCII (UnicodeEncodeError)
            raise DownloadError(
                f"remote {_remote_label(remote)}: cannot make an HTTP client from its "
                f"settings ({type(exc).__name__}: {exc}); check its proxy_url (http:// or "
                "https://) and that its headers are ASCII",
                url=remote.url,
            ) from exc

    async def _keep_credentials_at_their_origin(self, request: httpx.Request) -> None:
        """Strip what authenticates a request from a redirect that leaves its origin.

        httpx drops only ``Authorization`` when a redirect leads to another origin; the
        remote's ``headers``, a download's own headers and those a plugin's
        ``build_request`` added would follow to whatever host the upstream names. So the
        first request of a download records its origin and headers, and every redirect
        to another origin (an https→http downgrade is one) keeps only the headers in
        ``_KEPT_ACROSS_ORIGINS``, unless the remote set ``send_credentials_on_redirect``.
        Once stripped, they are not restored by a redirect back to the origin.
        """
        first = request.extensions.get(_FIRST_REQUEST)
        if first is None:
            request.extensions[_FIRST_REQUEST] = (request.url, request.headers.copy())
            return
        first_url, first_headers = first
        if _origin(request.url) == _origin(first_url):
            return
        if self.remote.send_credentials_on_redirect:
            # Asked for: put back the Authorization httpx took off.
            authorization = first_headers.get("Authorization")
            if authorization is not None and "Authorization" not in request.headers:
                request.headers["Authorization"] = authorization
            return
        for name in list(request.headers.keys()):
            if name.lower() not in _KEPT_ACROSS_ORIGINS:
                del request.headers[name]

    async def _refuse_once_closed(self, request: httpx.Request) -> None:
        """Refuse a request of the pooled client once the factory has closed.

        httpx checks that a client is open only when ``send()`` starts, and a closed
        httpcore pool still opens connections: a redirect's next request, made after the
        factory closed, would go out on a connection nothing ever closes.
        """
        if self._closed:
            raise DownloaderFactoryClosed(
                f"the DownloaderFactory is closed; not requesting {redact_url(str(request.url))}"
            )

    def _make_ssl_contexts(self) -> tuple[ssl.SSLContext, ssl.SSLContext | None]:
        """The TLS context for the remote's servers, and one for its https proxy (if any).

        Both verify with the remote's ``ca_cert`` (or not at all with
        ``tls_validation=False``); only the servers are shown the client certificate,
        which identifies the remote's client to them, not to the proxy in between.
        """
        remote = self.remote
        label = _remote_label(remote)
        try:
            context = self._verifying_context()
            https_proxy = _scheme_of(remote.proxy_url or "") == "https"
            proxy_context = self._verifying_context() if https_proxy else None
            if remote.client_cert:
                context.load_cert_chain(remote.client_cert, remote.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise DownloadError(
                f"remote {label}: cannot load its TLS files (ca_cert={remote.ca_cert!r}, "
                f"client_cert={remote.client_cert!r}, client_key={remote.client_key!r}): "
                f"{exc}; check that they exist and hold PEM data",
                url=remote.url,
            ) from exc
        return context, proxy_context

    def _verifying_context(self) -> ssl.SSLContext:
        remote = self.remote
        if not remote.tls_validation:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if remote.ca_cert:
            return ssl.create_default_context(cafile=remote.ca_cert)
        return httpx.create_ssl_context(trust_env=False)


class _Slot(contextlib.AbstractAsyncContextManager[None]):
    """``RemoteSession.slot()``: stateless (the limiter tracks its borrowers), so one
    object per session serves every download, without a generator per use."""

    __slots__ = ("_limiter", "_rate_limiter")

    def __init__(self, limiter: anyio.CapacityLimiter, rate_limiter: RateLimiter | None) -> None:
        self._limiter = limiter
        self._rate_limiter = rate_limiter

    async def __aenter__(self) -> None:
        await self._limiter.acquire()
        if self._rate_limiter is None:
            return
        waited = False
        try:
            await self._rate_limiter.wait()
            waited = True
        finally:
            if not waited:  # cancelled while waiting: the slot was never used
                self._limiter.release()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._limiter.release()


_run_factory: anyio.lowlevel.RunVar[DownloaderFactory] = anyio.lowlevel.RunVar(
    "stageline_run_downloader_factory"
)


class DownloaderFactory:
    """Builds downloaders by url scheme and keeps one :class:`RemoteSession` per remote.

    Use it as an async context manager around a sync and hand it to what downloads
    (``factory.get_downloader(remote, url=…)``, ``await d_artifact.download(factory)``);
    on exit it closes every HTTP client it opened. Inside the block it is also the
    factory open in the current context (see :func:`current_downloader_factory`).
    Subclass it, or :meth:`register` a class for a scheme, to substitute a downloader.

    Args:
        allowed_digests: the digest kinds computed for every download and accepted as
            expectations; must contain sha256. md5 and sha1 are left out by default.
        retry: how retries back off (their number is each remote's ``max_retries``).
        downloader_classes: downloader class by url scheme, replacing the defaults
            (``http``/``https`` → :class:`HttpDownloader`, ``file`` → :class:`FileDownloader`).
        batch_size: bodies larger than this are hashed in a worker thread.

    Raises:
        ValueError: when ``allowed_digests`` has an unknown kind or lacks sha256.
    """

    def __init__(
        self,
        *,
        allowed_digests: Iterable[str] = DEFAULT_ALLOWED_DIGESTS,
        retry: RetrySettings | None = None,
        downloader_classes: Mapping[str, DownloaderClass] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        _pool_clients: bool = True,
    ) -> None:
        from ._file import FileDownloader
        from ._http import HttpDownloader

        self.allowed_digests = check_allowed_digests(allowed_digests)
        self.retry = retry if retry is not None else RetrySettings()
        if downloader_classes is None:
            downloader_classes = {
                "http": HttpDownloader,
                "https": HttpDownloader,
                "file": FileDownloader,
            }
        self._classes: dict[str, DownloaderClass] = dict(downloader_classes)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidValueError(
                f"DownloaderFactory: batch_size must be an int >= 1, got {batch_size!r}"
            )
        self.batch_size = batch_size
        self._pool_clients = _pool_clients
        self._sessions: dict[Hashable, RemoteSession] = {}
        # Unsaved, unnamed remotes are known only by object; the run's factory (no pooled
        # client to close) must not keep such objects alive for the whole event loop run.
        self._sessions_by_object: MutableMapping[Remote, RemoteSession] = (
            {} if _pool_clients else weakref.WeakKeyDictionary()
        )
        self._tokens: list[contextvars.Token[DownloaderFactoryLike[Any] | None]] = []
        self._closed = False

    def register(self, scheme: str, downloader_class: DownloaderClass) -> None:
        """Use ``downloader_class`` for urls with ``scheme`` (e.g. ``"https"``).

        A new scheme is fetched by remotes whose url has that scheme (see
        :meth:`allowed_schemes`): registering ``"oci"`` lets an ``oci://`` remote fetch
        ``oci://`` urls, not an https remote.
        """
        self._classes[scheme.lower()] = downloader_class

    def allowed_schemes(self, remote: Remote) -> frozenset[str]:
        """The url schemes ``remote`` may fetch: those of its own url.

        An ``http://`` or ``https://`` remote fetches http and https urls; a ``file://``
        remote fetches ``file://`` urls; a remote of any other scheme (one a plugin
        registered) fetches urls of that scheme only. Urls come from upstream metadata,
        which is untrusted: a ``file://`` url in an http remote's metadata would make a
        sync read this machine's files.

        Override it in a subclass to widen the rule for a plugin (say, an https remote
        whose metadata also gives ``oci://`` urls); never let an http(s) remote fetch
        ``file://`` urls.
        """
        scheme = _scheme_of(remote.url)
        return _HTTP_FAMILY if scheme in _HTTP_FAMILY else frozenset({scheme})

    def session(self, remote: Remote) -> RemoteSession:
        """The shared state for ``remote`` in this factory (made on first use).

        Keyed by the remote's identity, not the Python object: two ``Remote`` objects
        with the same name (or, unnamed, the same primary key) share one connection pool,
        one concurrency limit and one rate limit, as the same upstream must. An unsaved
        remote without a name is only itself.

        Raises:
            DownloaderFactoryClosed: when the factory was closed.
        """
        if self._closed:
            raise DownloaderFactoryClosed(
                "this DownloaderFactory is closed; make downloaders inside an open factory "
                "(or open a new one)"
            )
        identity = _identity(remote)
        sessions: MutableMapping[Any, RemoteSession] = (
            self._sessions_by_object if identity is None else self._sessions
        )
        key = remote if identity is None else identity
        session = sessions.get(key)
        if session is None:
            session = sessions[key] = RemoteSession(remote, pool_client=self._pool_clients)
        return session

    def get_downloader(
        self,
        remote: Remote,
        *,
        url: str,
        expected_digests: Mapping[str, str] | None = None,
        expected_size: int | None = None,
        **kwargs: Any,
    ) -> BaseDownloader:
        """Return a downloader for ``url`` using ``remote``'s settings.

        Args:
            remote: whose settings (auth, TLS, limits, retries) apply.
            url: what to download.
            expected_digests: digests the file must have, by kind.
            expected_size: the size the file must have.
            **kwargs: passed on to the downloader class (e.g. ``headers``).

        Every download goes through here, so this is where a url's scheme is checked
        against what the remote may fetch (see :meth:`allowed_schemes`).

        Raises:
            UnsafeURLError: (also a ``ValueError``) when the remote may not fetch the url's
                scheme, e.g. a ``file://`` url for an http(s) remote.
            DownloadError: when no downloader handles the url's scheme, or the url cannot
                be parsed.
            ForbiddenDigestError: when an expected digest is of a kind not allowed.
            MalformedDigestError: when an expected digest is not hex of its kind's length.
            DownloaderFactoryClosed: when the factory was closed.
        """
        try:
            scheme = urllib.parse.urlsplit(url).scheme.lower()
        except ValueError as exc:  # e.g. an unclosed "[" in the host
            raise DownloadError(
                f"cannot download {redact_url(url)!r}: the url is malformed ({exc}); check "
                "the url the metadata gave",
                url=url,
            ) from exc
        allowed = self.allowed_schemes(remote)
        if scheme not in allowed:
            raise UnsafeURLError(self._unsafe_url_message(remote, url, scheme, allowed), url=url)
        downloader_class = self._classes.get(scheme)
        if downloader_class is None:
            raise DownloadError(
                f"no downloader for {redact_url(url)!r}: its scheme {scheme!r} is not one of "
                f"{sorted(self._classes)}; register a downloader class for it on the "
                "DownloaderFactory",
                url=url,
            )
        return downloader_class(
            url=url,
            remote=remote,
            factory=self,
            expected_digests=expected_digests,
            expected_size=expected_size,
            **kwargs,
        )

    def _unsafe_url_message(
        self, remote: Remote, url: str, scheme: str, allowed: frozenset[str]
    ) -> str:
        if scheme == "file":
            risk = "a file:// url there would make the sync read this machine's local files"
        else:
            what = f"{scheme}:" if scheme else "scheme-less"
            risk = f"a {what} url there could fetch what the remote does not serve"
        return (
            f"refusing to download {redact_url(url)}: remote {_remote_label(remote)} fetches only "
            f"{' and '.join(sorted(allowed))} urls, and urls come from upstream metadata, "
            f"which is untrusted: {risk}. If the remote really serves {scheme or 'such'} urls, "
            "give it a url of that scheme, or widen DownloaderFactory.allowed_schemes in a "
            "subclass"
        )

    async def aclose(self) -> None:
        """Close every HTTP client this factory opened. Idempotent.

        Downloads made in this factory that are still running then fail with
        :class:`DownloaderFactoryClosed` (a ``RuntimeError``, not a
        :class:`DownloadError`: no retry or mirror can help); keep the factory open until
        they have finished.
        """
        self._closed = True
        sessions = [*self._sessions.values(), *self._sessions_by_object.values()]
        self._sessions.clear()
        self._sessions_by_object.clear()
        for session in sessions:
            await session.aclose()

    async def __aenter__(self) -> Self:
        self._tokens.append(downloader_factory_var.set(self))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        downloader_factory_var.reset(self._tokens.pop())
        with anyio.CancelScope(shield=True):
            await self.aclose()


def current_downloader_factory() -> DownloaderFactory:
    """The downloader factory in effect here, for code that was not handed one.

    That is the innermost :class:`DownloaderFactory` open in the current context, or else
    a factory kept for the current event loop run, whose downloads each use (and close)
    their own client: correct, but no connection is reused. Prefer passing the factory.

    Raises:
        RuntimeError: outside a running event loop.
    """
    factory = downloader_factory_var.get()
    if isinstance(factory, DownloaderFactory):
        return factory
    try:
        return _run_factory.get()
    except LookupError:
        factory = DownloaderFactory(_pool_clients=False)
        _run_factory.set(factory)
        return factory
