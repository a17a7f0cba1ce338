"""Benchmark: stageline's validating downloader against a bare httpx client.

Run with ``.venv/bin/python tests/benchmarks/download.py`` (``--help`` for options).

Two workloads — many small files (2 000 x 64 KiB) and a few large ones (10 x 50 MiB) —
are downloaded from a local server on 127.0.0.1, on asyncio and on trio, twice each:

- *bare*: an ``httpx.AsyncClient`` that only writes the bytes to a file (no hashing, no
  validation, no retries, no limits), 10 downloads at a time;
- *stageline*: ``factory.get_downloader(remote, ...).run()`` inside a
  ``DownloaderFactory``, with the expected size and sha256 checked and all four default
  digests computed, with the remote's ``download_concurrency`` of 10;
- *on-loop* (large files only): the same with every byte hashed on the event loop
  (a huge ``batch_size``), to measure what hashing in worker threads gains;
- *sha256-only* (large files only): the same computing sha256 alone, to measure how
  much of the cost is the four digests rather than the downloader.

The last column is the client process's CPU time (every thread, user + system) per MB
received, in its best round: what the work costs, whatever the parallelism.

After each workload a *ceiling* line gives the best ratio any validating client could
reach on this machine: it must do the bare client's work (same httpx, same bytes written)
plus compute the four digests, while the server serves the same bytes, all on
``os.cpu_count()`` cores. That total CPU divided by the cores bounds its wall time from
below; the bare client's wall time over that bound is the ceiling. Where the ceiling is
under the target, no implementation meets the target on this machine.

The server runs in a separate process (a minimal HTTP/1.1 keep-alive server on raw
asyncio, serving bodies from memory) so that it does not share the client's GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import os
import platform
import resource
import shutil
import socket
import tempfile
import time
from pathlib import Path

import anyio
import httpx

from stageline.download import DEFAULT_ALLOWED_DIGESTS, DownloaderFactory
from stageline.download._validation import DEFAULT_BATCH_SIZE
from stageline.models import Remote
from stageline.storage import use_temp_dir

KIB = 1024
MIB = 1024 * KIB
CONCURRENCY = 10


def _payload(size: int, seed: int) -> bytes:
    block = hashlib.sha512(str(seed).encode()).digest()
    return (block * (size // len(block) + 1))[:size]


# --- the server (separate process) -------------------------------------------------


class _Protocol(asyncio.Protocol):
    def __init__(self, bodies: dict[bytes, bytes]) -> None:
        self.bodies = bodies
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.task = asyncio.get_running_loop().create_task(self._respond())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()
        self.can_write.set()

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            path = head.split(b" ", 2)[1]
            self.queue.put_nowait(path)

    async def _respond(self) -> None:
        assert self.transport is not None
        while True:
            path = await self.queue.get()
            data = self.bodies.get(path.split(b"/", 2)[1] if path.count(b"/") >= 2 else b"")
            if data is None:
                self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                continue
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: %d\r\n\r\n" % len(data)
            )
            view = memoryview(data)
            for start in range(0, len(data), MIB):
                await self.can_write.wait()
                if self.transport.is_closing():
                    return
                self.transport.write(view[start : start + MIB])


def _serve(sock: socket.socket, small: int, large: int) -> None:
    bodies = {b"small": _payload(small, 1), b"large": _payload(large, 2)}

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(
            lambda: _Protocol(bodies), sock=sock
        )
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- the clients --------------------------------------------------------------------


async def _bare(urls: list[str], directory: Path) -> None:
    limiter = anyio.CapacityLimiter(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:

        async def one(i: int, url: str) -> None:
            async with limiter, client.stream("GET", url) as response:
                path = directory / f"bare-{i}"
                with path.open("wb") as f:  # the baseline writes on the loop
                    async for chunk in response.aiter_bytes():
                        f.write(chunk)
                path.unlink()

        async with anyio.create_task_group() as tg:
            for i, url in enumerate(urls):
                tg.start_soon(one, i, url)


async def _stageline(
    urls: list[str],
    directory: Path,
    size: int,
    sha256: str,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    allowed_digests: frozenset[str] = DEFAULT_ALLOWED_DIGESTS,
) -> None:
    remote = Remote(url=urls[0], download_concurrency=CONCURRENCY)
    factory = DownloaderFactory(batch_size=batch_size, allowed_digests=allowed_digests)

    async def one(url: str) -> None:
        result = await factory.get_downloader(
            remote, url=url, expected_digests={"sha256": sha256}, expected_size=size
        ).run()
        result.path.unlink()

    with use_temp_dir(directory):
        async with factory, anyio.create_task_group() as tg:
            for url in urls:
                tg.start_soon(one, url)


async def _timed(client: str, urls: list[str], directory: Path, size: int, sha256: str) -> float:
    started = time.perf_counter()
    if client == "bare":
        await _bare(urls, directory)
    elif client == "stageline":
        await _stageline(urls, directory, size, sha256)
    elif client == "on-loop":  # everything hashed on the event loop
        await _stageline(urls, directory, size, sha256, batch_size=2**62)
    else:  # sha256 only: how much of the cost is computing four digests
        await _stageline(urls, directory, size, sha256, allowed_digests=frozenset({"sha256"}))
    return time.perf_counter() - started


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _server_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of the server process so far, or None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # utime and stime are fields 14 and 15 of stat(5); the split above starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _digest_cpu_seconds(payload: bytes, algorithms: frozenset[str]) -> float:
    """CPU time one thread spends computing ``algorithms`` over ``payload``, as the
    downloader feeds them (updates of at most one batch)."""
    rounds = max(1, (64 * MIB) // len(payload))  # enough bytes for a stable figure
    started = time.thread_time()
    for _ in range(rounds):
        for name in sorted(algorithms):
            hasher = hashlib.new(name)
            for start in range(0, len(payload), DEFAULT_BATCH_SIZE):
                hasher.update(payload[start : start + DEFAULT_BATCH_SIZE])
            hasher.hexdigest()
    return (time.thread_time() - started) / rounds


def _ceiling(wall: float, client_cpu: float, server_cpu: float | None, digests: float) -> float:
    """The best ratio to the bare client any client can reach on this machine.

    Whatever else it does, a validating client receives and writes the same bytes through
    the same httpx as the bare one (its CPU cost), the server serves them (its CPU cost),
    and every digest is computed once (``digests``). All of that shares ``os.cpu_count()``
    cores, so its wall time is at least the total CPU divided by the cores, and its ratio
    at most the bare client's wall time over that.
    """
    cores = os.cpu_count() or 1
    total = client_cpu + (server_cpu or 0.0) + digests
    return min(1.0, wall * cores / total)


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-count", type=int, default=2000)
    parser.add_argument("--small-size", type=int, default=64 * KIB)
    parser.add_argument("--large-count", type=int, default=10)
    parser.add_argument("--large-size", type=int, default=50 * MIB)
    parser.add_argument("--rounds", type=int, default=2, help="best of this many runs")
    parser.add_argument("--backend", action="append", choices=["asyncio", "trio"])
    parser.add_argument(
        "--directory",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where files are written (default: /dev/shm when present, so that the disk "
        "is not what is measured)",
    )
    args = parser.parse_args()
    backends = args.backend or ["asyncio", "trio"]

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    server = context.Process(
        target=_serve, args=(sock, args.small_size, args.large_size), daemon=True
    )
    server.start()
    sock.close()
    directory = Path(tempfile.mkdtemp(prefix="stageline-bench-", dir=args.directory))
    workloads = {
        "small": (args.small_count, args.small_size, _payload(args.small_size, 1)),
        "large": (args.large_count, args.large_size, _payload(args.large_size, 2)),
    }
    print(
        f"# {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}, httpx {httpx.__version__}, "
        f"files in {directory.parent}"
    )
    clients = {
        "small": ("bare", "stageline"),
        "large": ("bare", "stageline", "on-loop", "sha256-only"),
    }
    print(f"# load average before: {_load()}")
    print(
        f"{'backend':8} {'workload':18} {'client':12} {'files/s':>9} {'MB/s':>8} {'ratio':>6} "
        f"{'cpu ms/MB':>9}"
    )
    try:
        for backend in backends:
            for name, (count, size, payload) in workloads.items():
                if count == 0:
                    continue
                sha256 = hashlib.sha256(payload).hexdigest()
                urls = [f"http://127.0.0.1:{port}/{name}/{i}" for i in range(count)]
                best: dict[str, float] = {}
                cpu: dict[str, float] = {}  # the client's CPU time in its best round
                server_cpu: dict[str, float | None] = {}  # the server's, in that round
                for _ in range(args.rounds):
                    for client in clients[name]:
                        cpu_before = _cpu_seconds()
                        server_before = _server_cpu_seconds(server.pid)
                        elapsed = anyio.run(
                            _timed, client, urls, directory, size, sha256, backend=backend
                        )
                        if elapsed < best.get(client, float("inf")):
                            best[client] = elapsed
                            cpu[client] = _cpu_seconds() - cpu_before
                            server_after = _server_cpu_seconds(server.pid)
                            server_cpu[client] = (
                                None
                                if server_before is None or server_after is None
                                else server_after - server_before
                            )
                label = f"{count} x {size // KIB} KiB"
                for client in clients[name]:
                    elapsed = best[client]
                    ratio = best["bare"] / elapsed
                    megabytes = count * size / 1e6
                    print(
                        f"{backend:8} {label:18} {client:12} {count / elapsed:9.1f} "
                        f"{megabytes / elapsed:8.1f} {ratio:6.2f} "
                        f"{cpu[client] / megabytes * 1e3:9.2f}"
                    )
                digests = count * _digest_cpu_seconds(payload, DEFAULT_ALLOWED_DIGESTS)
                bare_server = server_cpu["bare"]
                server_note = (
                    "unknown" if bare_server is None else f"{bare_server / megabytes * 1e3:.2f}"
                )
                print(
                    f"#   ceiling on {os.cpu_count()} CPUs: "
                    f"{_ceiling(best['bare'], cpu['bare'], bare_server, digests):.2f} "
                    f"(ms of CPU per MB: bare client {cpu['bare'] / megabytes * 1e3:.2f}, "
                    f"server {server_note}, the four digests {digests / megabytes * 1e3:.2f})"
                )
        print(f"# load average after: {_load()}")
    finally:
        server.terminate()
        server.join()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
