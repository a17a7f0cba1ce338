"""The HTTP(S) downloader: httpx, streamed to a temporary file, validated, retried."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, NoReturn

import anyio
import httpx
import stamina

from .._exceptions import (
    DownloadConnectionError,
    DownloadError,
    DownloadTimeout,
    HTTPStatusError,
    SizeMismatch,
    redact_url,
)
from ._base import DownloadResult, _RemoteDownloader
from ._retry import (
    _caused_by_certificate_error,
    install_retry_logging,
    make_backoff_hook,
    parse_retry_after,
)
from ._validation import DigestingWriter

if TYPE_CHECKING:
    from ..models import Remote
    from ._factory import DownloaderFactory

__all__ = ["HttpDownloader"]

_STATUS_ADVICE = {
    401: "check the remote's username and password",
    403: "check the remote's credentials and headers",
    404: "check the remote's url and the path the metadata gave",
    407: "check the remote's proxy_username and proxy_password",
    429: "the server is rate limiting; set a lower Remote.rate_limit",
}


_PROXY_REFUSAL = re.compile(r"([1-5][0-9][0-9]) ")


#: The statuses whose body is the whole file asked for (RFC 9110 §15.3).
_WHOLE_BODY_STATUSES: Final = frozenset({200, 203})


def _status_advice(status_code: int) -> str:
    if status_code in _STATUS_ADVICE:
        return _STATUS_ADVICE[status_code]
    if status_code < 300:
        return "the answer carries no whole file; check the url"
    if status_code < 400:
        return "the server redirected without a Location to follow"
    if status_code >= 500:
        return "the server failed; try again later"
    return "the server refused the request"


async def _unwind(chunks: AsyncIterator[bytes]) -> None:
    """Run httpx's body generators to their end once the response is closed.

    When consuming stops between two chunks (a size mismatch, or a cancellation that
    arrives while the download waits for its worker threads), httpx's nested body
    generators stay suspended, and Trio warns about each one when it is garbage collected.
    Closing the outermost one does not reach the inner ones; resuming it does: the closed
    stream fails at the bottom and that error unwinds every level. Shielded, because this
    often runs during a cancellation; bounded, because the response is already closed.
    """
    with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
        async for _ in chunks:
            pass


class HttpDownloader(_RemoteDownloader):
    """Downloads an ``http://`` or ``https://`` url with a remote's settings.

    The body is streamed to a temporary file while every allowed digest is computed;
    size and digests are then checked. Failed tries are retried (see ``docs/downloads.md``)
    up to ``remote.max_retries`` times, each into a fresh temporary file, inside one of
    the remote's concurrency slots and after waiting for its rate limit.

    Subclass it to change how a request is made (override :meth:`build_request`) or what
    a response means (override :meth:`check_response`), then register the subclass on a
    :class:`DownloaderFactory` (or return it from a factory subclass's ``get_downloader``).

    Args:
        url: the url to download.
        remote: whose settings (auth, TLS, proxy, limits, retries) apply.
        factory: the factory whose per-remote session (client, limiter) is used.
        expected_digests: digests the body must have, by kind.
        expected_size: the size the body must have, in bytes.
        headers: extra headers for this request only.

    Raises:
        ForbiddenDigestError: when an expected digest is of a kind not allowed.
    """

    def __init__(
        self,
        *,
        url: str,
        remote: Remote,
        factory: DownloaderFactory,
        expected_digests: Mapping[str, str] | None = None,
        expected_size: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            url=url,
            remote=remote,
            factory=factory,
            expected_digests=expected_digests,
            expected_size=expected_size,
        )
        self.headers = dict(headers or {})

    async def run(self) -> DownloadResult:
        """Download, validate and return the result.

        Returns:
            The temporary file, its size and digests, and the response headers.

        Raises:
            HTTPStatusError: the server answered with an error status (4xx at once;
                429 and 5xx after the retries).
            DownloadTimeout: a connect, read or total timeout, after the retries.
            DownloadConnectionError: the connection failed or broke, after the retries
                (a certificate that fails verification is not retried).
            DigestMismatch: the body's digest differs, after the retries.
            SizeMismatch: the body's size differs, after the retries.
            DownloadError: any other failure of the request (e.g. a malformed url).
            StorageError: the temporary file could not be written.
            DownloaderFactoryClosed: (a ``RuntimeError``) the factory was closed before or
                while the download ran (not retried; keep the factory open until its
                downloads have finished).

        Every :class:`DownloadError` carries ``attempts``, the number of tries made.
        """
        attempts = 1
        try:
            # The first try runs outside stamina: setting up its retry loop costs about as
            # much as the rest of a small download's bookkeeping, and most tries succeed.
            try:
                return await self._attempt(attempts)
            except Exception as exc:
                first_failure = exc
            install_retry_logging()
            # stamina decides about the first failure as if it had made that try itself
            # (same backoff hook, same waits, same attempt count, same instrumentation):
            # its first "attempt" re-raises it, and the retries follow.
            async for attempt in stamina.retry_context(
                on=make_backoff_hook(self.factory.retry),
                attempts=self.remote.max_retries + 1,
                timeout=None,
                wait_initial=self.factory.retry.wait_initial,
                wait_max=self.factory.retry.wait_max,
                wait_jitter=self.factory.retry.wait_jitter,
            ):
                with attempt:
                    attempts = attempt.num
                    if attempts == 1:
                        raise first_failure
                    return await self._attempt(attempts)
        except DownloadError as exc:
            exc.attempts = attempts
            if attempts > 1:
                message = exc.args[0] if exc.args else ""
                exc.args = (f"{message} (gave up after {attempts} tries)", *exc.args[1:])
            raise
        raise AssertionError("unreachable: stamina either returns or raises")  # pragma: no cover

    async def _attempt(self, attempts: int) -> DownloadResult:
        """One try, inside one of the remote's concurrency slots."""
        async with self.session.slot():
            return await self._try_once(attempts)

    def build_request(self, client: httpx.AsyncClient) -> httpx.Request:
        """The request for one try; override to add headers or change the method.

        Credentials in the url (``user:password@host``) become an ``Authorization``
        header and leave the url, so that nothing that shows the request's url (httpx
        logs each one at INFO) shows them; the remote's own username, if set, still wins.
        """
        headers = self.headers
        if "@" not in self.url:
            # No userinfo possible: the client parses the url itself (parsing it here
            # first doubled the cost of the request's url, which is pure Python in httpx).
            return client.build_request("GET", self.url, headers=headers)
        url = httpx.URL(self.url)
        if url.userinfo:
            if not any(name.lower() == "authorization" for name in headers):
                credentials = f"{url.username}:{url.password}".encode()
                authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
                headers = {**headers, "Authorization": authorization}
            url = url.copy_with(username=None, password=None)
        return client.build_request("GET", url, headers=headers)

    def check_response(self, response: httpx.Response) -> None:
        """Raise for a response that is not a body to keep.

        Raises:
            HTTPStatusError: for a status of 400 or more; for a redirect (3xx) the client
                could not follow (no usable ``Location``); and for a success that carries
                no whole file (204 No Content, 205, 206 Partial Content to a request
                without a range, …): in all of these the body is not the file.

        An override may raise any :class:`DownloadError` (a retryable kind is retried) or
        call ``response.raise_for_status()``: httpx's ``HTTPStatusError`` becomes this
        one, with the same retry rules.
        """
        if response.status_code in _WHOLE_BODY_STATUSES:
            return
        raise self._status_error(response)

    def _status_error(self, response: httpx.Response) -> HTTPStatusError:
        retry_after = None
        if response.status_code in (429, 503):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return HTTPStatusError(
            f"downloading {self.redacted_url} failed with HTTP {response.status_code} "
            f"{response.reason_phrase}; {_status_advice(response.status_code)}",
            url=self.url,
            status_code=response.status_code,
            retry_after=retry_after,
        )

    async def _try_once(self, attempts: int) -> DownloadResult:
        total = self.remote.total_timeout
        with self._translate_errors():
            if total is None:  # no cancel scope to enter and leave for nothing
                return await self._fetch(attempts)
            try:
                with anyio.fail_after(total):
                    return await self._fetch(attempts)
            except TimeoutError as exc:
                raise DownloadTimeout(
                    f"downloading {self.redacted_url} took longer than the remote's total_timeout "
                    f"of {total} s; raise Remote.total_timeout for large files or slow links",
                    url=self.url,
                ) from exc

    async def _fetch(self, attempts: int) -> DownloadResult:
        result: DownloadResult | None = None
        try:
            async with self.session.client(url=self.url) as client:
                result = await self._fetch_with(client, attempts)
        except BaseException:
            # The file was finished, but leaving the client block failed or was cancelled
            # (a client made for this download closes there, and a close awaits): no one
            # will receive the result, so its file must not stay in the temporary area.
            if result is not None:
                with contextlib.suppress(OSError):
                    os.unlink(result.path)
            raise
        return result

    async def _fetch_with(self, client: httpx.AsyncClient, attempts: int) -> DownloadResult:
        """One request with ``client``, its body streamed into a validated temporary file."""
        request = self.build_request(client)
        port = request.url.port
        if port is not None and not 0 < port < 65536:
            # httpx accepts it; the socket layer then fails differently per backend
            # (a retried connection error on trio, an ExceptionGroup on asyncio).
            raise httpx.InvalidURL(f"Invalid port: {port}")
        response = await client.send(request, stream=True)
        async with DigestingWriter(
            url=self.url,
            expected_digests=self.expected_digests,
            expected_size=self.expected_size,
            allowed_digests=self.factory.allowed_digests,
            batch_size=self.factory.batch_size,
        ) as writer:
            # The body as sent, never decoded: a server that labels a .gz file
            # "Content-Encoding: gzip" (the usual reason one is sent despite our
            # Accept-Encoding: identity) serves the very bytes the metadata hashed.
            chunks = response.aiter_raw()
            consumed = False
            try:
                self.check_response(response)
                self._check_announced_length(response)
                await writer.consume(chunks)
                consumed = True
            finally:
                await response.aclose()
                if not consumed:
                    await _unwind(chunks)
            # Validated only once the response is closed, so that a failure to close
            # cannot orphan a finished file.
            path, attributes = writer.finish()
        return DownloadResult(
            url=self.url,
            path=path,
            artifact_attributes=attributes,
            headers=dict(response.headers),
            attempts=attempts,
        )

    def _check_announced_length(self, response: httpx.Response) -> None:
        """Fail before reading a body whose announced length is already wrong.

        The body is kept as sent (see :meth:`_fetch_with`), so ``Content-Length`` is the length
        of the file whatever ``Content-Encoding`` says.
        """
        announced = response.headers.get("Content-Length")
        if self.expected_size is None or announced is None or not announced.isdigit():
            return
        if "Transfer-Encoding" in response.headers:
            return  # the transfer coding frames the body; the length means nothing (RFC 9112)
        if int(announced) != self.expected_size:
            raise SizeMismatch(
                f"{self.redacted_url} has the wrong size: expected {self.expected_size} bytes, the "
                f"server announced {announced}; the upstream file changed or the metadata "
                "that announced it is stale",
                url=self.url,
                expected=self.expected_size,
                actual=int(announced),
            )

    @contextlib.contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as exc:
            self._raise_timeout(exc)
        except httpx.InvalidURL as exc:  # not an httpx.HTTPError
            raise DownloadError(
                f"cannot download {self.redacted_url}: the url is malformed ({exc}); check the url "
                "the metadata gave",
                url=self.url,
            ) from exc
        except UnicodeError as exc:
            # A host no IDNA codec accepts (httpx fails building the request for an invalid
            # A-label such as "xn--zz", trio's resolver for an empty or over-long label) or
            # a per-download header that is not ASCII. Asking again cannot help, and it
            # must stay a DownloadError so that the next mirror is tried.
            raise DownloadError(
                f"cannot make the request for {self.redacted_url}: its host name or a "
                f"request header cannot be encoded ({exc}); check the url the metadata gave "
                "and that header names and values are ASCII",
                url=self.url,
            ) from exc
        except httpx.RemoteProtocolError as exc:
            raise DownloadConnectionError(
                f"the connection for {self.redacted_url} broke or the server answered malformed "
                f"HTTP ({exc}); it is retried, and is often a server or proxy problem",
                url=self.url,
            ) from exc
        except (httpx.NetworkError, httpx.ProxyError) as exc:
            refused = _PROXY_REFUSAL.match(str(exc)) if isinstance(exc, httpx.ProxyError) else None
            if refused is not None:
                # The proxy answered the CONNECT for an https url with an error status
                # (httpcore's message is "<status> <reason>"): the same status rules apply
                # as for an answer to a plain request, e.g. a 407 is not retried.
                status_code = int(refused.group(1))
                raise HTTPStatusError(
                    f"the proxy refused to connect to {self.redacted_url} with HTTP {exc}; "
                    f"{_status_advice(status_code)}",
                    url=self.url,
                    status_code=status_code,
                ) from exc
            if _caused_by_certificate_error(exc):
                whose = self.redacted_url
                proxy_url = self.remote.proxy_url
                if proxy_url and proxy_url.lower().startswith("https:"):
                    whose = f"{whose} (or of the remote's proxy {redact_url(proxy_url)})"
                raise DownloadConnectionError(
                    f"the TLS certificate of {whose} failed verification "
                    f"({exc or type(exc).__name__}); give the remote a ca_cert that signs "
                    "it, or set tls_validation=False if you accept the risk",
                    url=self.url,
                ) from exc
            raise DownloadConnectionError(
                f"cannot connect to or read from {self.redacted_url} "
                f"({exc or type(exc).__name__}); check the url, the network and the remote's "
                "proxy settings",
                url=self.url,
            ) from exc
        except ssl.SSLError as exc:
            # httpcore lets some TLS failures during reads through untranslated (e.g. a
            # server rejecting the client certificate after the TLS 1.3 handshake).
            raise DownloadConnectionError(
                f"the TLS connection for {self.redacted_url} failed ({exc}); check the remote's "
                "ca_cert, client_cert and client_key",
                url=self.url,
            ) from exc
        except OSError as exc:
            raise DownloadConnectionError(
                f"the connection for {self.redacted_url} failed ({exc}); check the url and "
                "the network",
                url=self.url,
            ) from exc
        except httpx.HTTPStatusError as exc:
            # response.raise_for_status() in a check_response override: the same status
            # rules apply as to the answers check_response refuses itself (a 503 is retried).
            raise self._status_error(exc.response) from exc
        except httpx.HTTPError as exc:
            raise DownloadError(
                f"downloading {self.redacted_url} failed: {exc or type(exc).__name__}", url=self.url
            ) from exc

    def _raise_timeout(self, exc: httpx.TimeoutException) -> NoReturn:
        remote = self.remote
        connect, read = remote.connect_timeout, remote.sock_read_timeout
        what: dict[type[Any], str] = {
            httpx.ConnectTimeout: f"connecting took longer than connect_timeout={connect} s",
            httpx.ReadTimeout: f"no data arrived for sock_read_timeout={read} s",
            httpx.WriteTimeout: f"sending the request took longer than {read} s",
            httpx.PoolTimeout: f"no connection was free within {connect} s",
        }
        detail = what.get(type(exc), str(exc))
        raise DownloadTimeout(
            f"downloading {self.redacted_url} timed out: {detail}; raise the remote's timeouts if "
            "the server is slow, or check that it is reachable",
            url=self.url,
        ) from exc
