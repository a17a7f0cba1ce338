"""The demo's HTTP server, run as a script in a process of its own: ``python _demo_server.py DIR``.

It serves the files of ``DIR`` on 127.0.0.1 at a free port, writes that port and a
newline on its standard output, and serves until its standard input is closed (which
also happens when the process that started it ends, however it ends); it ignores
SIGINT, which the process that started it handles. It imports only
the standard library: run by its path, it starts without importing stageline.

A server of its own process does not take the GIL from the sync it serves: served
from a thread of the syncing process, the demo's first sync took about 1.4x as long
(4.4-5.1 s against 3.0-3.7 s for 2 002 files).
"""

from __future__ import annotations

import functools
import http.server
import signal
import sys
import threading
from typing import Any


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep connections open between files
    # The headers and the body go out in two writes: with Nagle's algorithm on, the body
    # of a small file waits for the client's delayed ACK of the headers (~40 ms a file).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """No line per request."""


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that goes away mid-response is no error of the demo's."""


def main(directory: str) -> None:
    # Ctrl-C reaches the whole process group: the demo stops this server itself, so that
    # no traceback of this process follows the demo's own message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    handler = functools.partial(_QuietHandler, directory=directory)
    with _Server(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, name="stageline-demo-server")
        thread.start()
        try:
            sys.stdout.write(f"{server.server_address[1]}\n")
            sys.stdout.flush()
            sys.stdin.read()  # until the parent closes it, or ends
        finally:
            server.shutdown()
            thread.join()


if __name__ == "__main__":
    main(sys.argv[1])
