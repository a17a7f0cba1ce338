"""Real HTTP servers on 127.0.0.1 for the download tests, scripted per path.

Each server runs ``http.server.ThreadingHTTPServer`` in a thread (one thread per
connection), so it works the same under any event loop the test uses. A path is given a
list of behaviours; each request to the path takes the next one (the last one repeats).
"""

from __future__ import annotations

import base64
import http.client
import http.server
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def files_in(directory: Path) -> list[Path]:
    """The files in ``directory`` (a blocking call, kept out of the async tests' bodies)."""
    return sorted(directory.iterdir())


Behaviour = Callable[["_Handler"], None]


@dataclass
class Recorded:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    started: float


@dataclass
class _State:
    routes: dict[str, list[Behaviour]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    completed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)
    stop: threading.Event = field(default_factory=threading.Event)
    body_started: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm on, a small
    # body waits ~40 ms for the client's delayed ACK on a kept-alive connection.
    disable_nagle_algorithm = True
    server: _Server
    timeout = 10  # a forgotten keep-alive connection cannot keep a thread forever

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""

    def do_GET(self) -> None:
        state = self.server.state
        with state.lock:
            state.requests.append(Recorded(self.path, dict(self.headers), time.monotonic()))
            behaviours = state.routes.get(self.path.split("?")[0])
            if behaviours is None:
                behaviour: Behaviour = status(404)
            elif len(behaviours) > 1:
                behaviour = behaviours.pop(0)
            else:
                behaviour = behaviours[0]
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            state.changed.notify_all()
        self._finished = False
        try:
            behaviour(self)
        finally:
            self.count_done()

    def count_done(self) -> None:
        """Count this request as done (once), before its last bytes go out.

        A client that has read the whole body may send its next request on a new
        connection, served by another thread, before this one returns from the
        behaviour: counting it done only then showed two requests in flight where
        the client never had two (a failure seen once in CI).
        """
        if self._finished:
            return
        self._finished = True
        state = self.server.state
        with state.lock:
            state.in_flight -= 1
            state.completed += 1
            state.changed.notify_all()

    def send_body(
        self, data: bytes, code: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.count_done()
        self.end_headers()
        self.wfile.write(data)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients dropping connections (timeouts, cancellation) is expected here."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    state: _State


def body(data: bytes, *, code: int = 200, headers: dict[str, str] | None = None) -> Behaviour:
    """Answer ``data`` with a correct Content-Length."""

    def run(handler: _Handler) -> None:
        handler.send_body(data, code, headers)

    return run


def redirect(location: str, *, code: int = 302) -> Behaviour:
    """Redirect to ``location``."""
    return body(b"moved", code=code, headers={"Location": location})


def status(code: int, *, headers: dict[str, str] | None = None) -> Behaviour:
    """Answer an error status with a short body."""
    return body(f"status {code}\n".encode(), code=code, headers=headers)


def truncated(data: bytes, *, send: int) -> Behaviour:
    """Announce all of ``data`` but send only ``send`` bytes, then close the connection."""

    def run(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[:send])
        handler.wfile.flush()
        handler.close_connection = True
        handler.count_done()  # before the client sees the end and may ask again
        handler.connection.shutdown(socket.SHUT_RDWR)

    return run


def chunked(data: bytes, *, piece: int = 4096, content_length: int | None = None) -> Behaviour:
    """Send ``data`` with chunked transfer encoding: no Content-Length to check up front,
    unless ``content_length`` asks for one beside it (which the chunking overrides)."""

    def run(handler: _Handler) -> None:
        handler.send_response(200)
        if content_length is not None:
            handler.send_header("Content-Length", str(content_length))
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for start in range(0, len(data), piece):
            part = data[start : start + piece]
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        handler.count_done()  # the last chunk ends the body for the client
        handler.wfile.write(b"0\r\n\r\n")

    return run


def stall(data: bytes, *, send: int) -> Behaviour:
    """Send the headers and ``send`` bytes, then nothing until the server stops."""

    def run(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[:send])
        handler.wfile.flush()
        handler.server.state.body_started.set()
        handler.server.state.stop.wait(30)
        handler.close_connection = True

    return run


def trickle(data: bytes, *, interval: float) -> Behaviour:
    """Send ``data`` one byte per ``interval`` seconds (never idle long enough for a
    read timeout, but slow overall)."""

    def run(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        for i in range(len(data)):
            if handler.server.state.stop.wait(interval):
                break
            if i == len(data) - 1:
                handler.count_done()  # the last byte ends the body for the client
            try:
                handler.wfile.write(data[i : i + 1])
                handler.wfile.flush()
            except OSError:
                break
        handler.close_connection = True

    return run


def hold_until_in_flight(data: bytes, *, count: int, total: int, limit: float = 5.0) -> Behaviour:
    """Answer once ``count`` requests are in flight, or as many as are left of ``total``
    (or after ``limit`` seconds, so that a bug fails the test instead of hanging it)."""

    def run(handler: _Handler) -> None:
        state = handler.server.state
        deadline = time.monotonic() + limit
        with state.lock:
            while not state.stop.is_set():
                left = total - state.completed
                if state.in_flight >= min(count, left):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                state.changed.wait(remaining)
        handler.send_body(data)

    return run


def require_basic_auth(user: str, password: str, then: Behaviour) -> Behaviour:
    """Answer 401 unless the request carries these basic credentials."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def run(handler: _Handler) -> None:
        if handler.headers.get("Authorization") != expected:
            handler.send_body(b"no", 401, {"WWW-Authenticate": 'Basic realm="test"'})
        else:
            then(handler)

    return run


class LocalServer:
    """A scripted HTTP(S) server on 127.0.0.1, on a random port."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = _State()
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if ssl_context is not None else "http"
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def state(self) -> _State:
        return self._server.state

    @property
    def requests(self) -> list[Recorded]:
        with self.state.lock:
            return list(self.state.requests)

    def requests_for(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def route(self, path: str, *behaviours: Behaviour) -> str:
        """Script ``path`` and return its url."""
        with self.state.lock:
            self.state.routes[path] = list(behaviours)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.state.stop.set()
        with self.state.lock:
            self.state.changed.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@contextmanager
def running(server: LocalServer) -> Iterator[LocalServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections for the block's duration.

    A socket binds it and never listens, so a connection is refused (on Linux and macOS),
    and no other socket can take the port meanwhile: a port merely found free and
    released could be taken by a server of a test running at the same time (pytest-xdist
    runs the suite in several processes).
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as _Handler's
    server: _ProxyServer
    timeout = 10

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Proxy-Authorization")))
        if self.headers.get("Proxy-Authorization") != self.server.expected_auth:
            data = b"proxy auth required"
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="proxy"')
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        parts = urllib.parse.urlsplit(self.path)
        if parts.hostname not in ("127.0.0.1", "localhost"):
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        upstream = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            forwarded = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("proxy-authorization", "proxy-connection", "connection")
            }
            upstream.request("GET", parts.path or "/", headers=forwarded)
            response = upstream.getresponse()
            data = response.read()
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Via", "1.1 test-proxy")
            self.end_headers()
            self.wfile.write(data)
        finally:
            upstream.close()

    def do_CONNECT(self) -> None:
        """Refuse tunnels (for https urls) with wrong credentials; this proxy tunnels nothing."""
        self.server.seen.append((self.path, self.headers.get("Proxy-Authorization")))
        refused = self.headers.get("Proxy-Authorization") != self.server.expected_auth
        self.send_response(407 if refused else 501)
        if refused:
            self.send_header("Proxy-Authenticate", 'Basic realm="proxy"')
        self.send_header("Content-Length", "0")
        self.end_headers()


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients dropping connections (timeouts, cancellation) is expected here."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    seen: list[tuple[str, str | None]]
    expected_auth: str


class ForwardProxy:
    """A forward HTTP proxy on 127.0.0.1 that demands basic Proxy-Authorization and
    forwards only to 127.0.0.1; with ``ssl_context``, an https proxy."""

    def __init__(
        self, user: str, password: str, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        self._server.seen = []
        self._server.expected_auth = (
            "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        )
        if ssl_context is not None:  # an https proxy: clients speak TLS to the proxy itself
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def seen(self) -> Sequence[tuple[str, str | None]]:
        """(request target, Proxy-Authorization) of each request the proxy received."""
        return list(self._server.seen)

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
