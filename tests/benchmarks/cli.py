"""Benchmark of ``stageline sync`` through the command line (a script; pytest does not collect it).

Run with ``.venv/bin/python tests/benchmarks/cli.py`` (``--help`` for options, ``--quick``
for a smoke run with small numbers). It needs matplotlib for the chart
(``pip install 'stageline[bench]'``); without it the numbers are printed and the chart
is skipped.

Each run is ``python -m stageline sync URL --json --quiet`` in a process of its own, as a
user runs it, against a repository served over HTTP by another process on 127.0.0.1 (a
minimal asyncio HTTP/1.1 server of the files, held in memory). For each run: the wall
time of the whole command (interpreter start and imports included), the sync's own time
(the ``seconds`` of its JSON summary), and the process's peak resident memory
(``ru_maxrss`` from ``wait4``). On
asyncio and on trio, at each size (10 000, 30 000 and 100 000 units by default):

1. *on_demand*: a first sync of a manifest of N entries (files of 1 KiB, not served: on
   demand nothing is downloaded), into a fresh home;
2. *forced*: the same sync again with ``--force``: the whole pipeline, nothing changes;
3. *skip*: again without ``--force``: the manifest is unchanged, so only it is read.

and *immediate*: a first sync of a fixture of M files of 1 KiB (10 000 by default)
downloaded from the server, then its forced and skipped re-syncs, and a *bare* httpx
client fetching the same files with 10 connections (the remote's default concurrency),
for scale: on a loaded machine both slow down together.

and *parsing*: the file plugin's first stage alone (its items drained by an
``EndStage``) reading a local manifest of 10 000 and of 1 000 000 lines, each in a
process of its own: the rate and the peak RSS, which must not grow with the manifest
(a manifest is read in chunks, never held whole).

The targets are those of the stages issue (on_demand 10 000 units/s, a no-change re-sync
20 000 units/s), compared with the sync's own time. Results and the chart are in
``docs/benchmarks.md`` ("CLI").
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import attrs

from stageline.plugins.file import write_fixture

KIB = 1024
TARGET_ON_DEMAND = 10_000.0
TARGET_RESYNC = 20_000.0


class _Protocol(asyncio.Protocol):
    """Minimal HTTP/1.1 keep-alive static server of the files in ``files`` (else 404).

    Not ``http.server``: its per-request cost (a thread, a stat, a MIME guess) would be
    what the immediate sync measured.
    """

    def __init__(self, files: dict[bytes, bytes]) -> None:
        self.files = files
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            path = urllib.parse.unquote_to_bytes(head.split(b" ", 2)[1].split(b"?")[0])
            found = self.files.get(path)
            if found is None:
                self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                continue
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(found), found)
            )


def _serve(directory: str, port: Any) -> None:
    root = Path(directory)
    files = {
        b"/" + path.relative_to(root).as_posix().encode(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
    }

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Protocol(files), "127.0.0.1", 0)
        port.value = server.sockets[0].getsockname()[1]
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def manifest_only(directory: Path, entries: int) -> None:
    """A PULP_MANIFEST of ``entries`` 1 KiB files with distinct digests, and no files."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "PULP_MANIFEST").open("w") as manifest:
        for number in range(entries):
            sha256 = hashlib.sha256(number.to_bytes(8, "big")).hexdigest()
            manifest.write(f"files/{number // 1000:04d}/{number:07d}.bin,{sha256},{KIB}\n")


@attrs.frozen
class Run:
    """One ``stageline sync`` command."""

    what: str
    backend: str
    units: int
    wall: float
    sync_seconds: float
    peak_mib: float

    @property
    def rate(self) -> float:
        """Units per second of the sync's own time."""
        return self.units / self.sync_seconds if self.sync_seconds else float("inf")


def stageline_sync(
    url: str, home: Path, backend: str, *options: str
) -> tuple[float, float, dict[str, Any]]:
    """Run the command; (wall seconds, peak RSS in MiB, its JSON summary)."""
    command = [sys.executable, "-m", "stageline", "sync", url, "-r", "bench", "--home", str(home)]
    command += ["--backend", backend, "--json", "--quiet", *options]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        # wait4 rather than wait: it gives this child's own resource usage.
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{err.read().decode()}")
        summary = json.loads(out.read())
    scale = 1 if sys.platform == "darwin" else KIB  # ru_maxrss: bytes on macOS, KiB on Linux
    return wall, usage.ru_maxrss * scale / 2**20, summary


def write_manifest(path: Path, lines: int) -> None:
    """A manifest of ``lines`` entries (no files)."""
    manifest_only(path.parent, lines)


async def _parse(path: Path) -> tuple[int, float]:
    from stageline import EndStage, create_pipeline
    from stageline.models import Remote
    from stageline.plugins.file import FileFirstStage
    from stageline.storage import ArtifactStorage

    remote = Remote(url="http://127.0.0.1:9/PULP_MANIFEST", name="parse")
    first = FileFirstStage(remote, ArtifactStorage(path.parent / "storage"), manifest=path)
    started = time.perf_counter()
    await create_pipeline([first, EndStage()])
    return first.units, time.perf_counter() - started


def parse_child(path: str) -> None:
    """In a child process: parse the manifest, print units and seconds as JSON."""
    import anyio

    units, seconds = anyio.run(_parse, Path(path))
    print(json.dumps({"units": units, "seconds": seconds}))


def measure_parse(path: Path) -> Run:
    """The first stage alone on the manifest at ``path``, in a process of its own."""
    command = [sys.executable, __file__, "--parse-child", str(path)]
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed")
        out.seek(0)
        result = json.loads(out.read())
    scale = 1 if sys.platform == "darwin" else KIB
    run = Run(
        "parsing",
        "asyncio",
        result["units"],
        wall,
        result["seconds"],
        usage.ru_maxrss * scale / 2**20,
    )
    size = path.stat().st_size / 2**20
    print(
        f"  parsing {run.units:>9} lines ({size:5.1f} MiB)  {run.sync_seconds:7.2f} s"
        f"  {run.rate:9.0f} lines/s  peak RSS {run.peak_mib:6.1f} MiB",
        flush=True,
    )
    return run


async def _bare(base: str, paths: list[str], concurrency: int) -> float:
    import anyio
    import httpx

    limiter = anyio.CapacityLimiter(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        started = time.perf_counter()

        async def one(path: str) -> None:
            async with limiter:
                response = await client.get(base + path)
                response.raise_for_status()

        async with anyio.create_task_group() as group:
            for path in paths:
                group.start_soon(one, path)
        return time.perf_counter() - started


def measure_bare(base: str, manifest: Path, backend: str) -> Run:
    """A bare httpx client fetching the fixture's files (10 connections), in this process."""
    import anyio

    paths = [line.split(",")[0] for line in manifest.read_text().splitlines()]
    seconds = anyio.run(_bare, base, paths, 10, backend=backend)
    run = Run("bare httpx (immediate)", backend, len(paths), seconds, seconds, 0.0)
    print(f"  {run.what:22} {run.units:>7} files {seconds:7.2f} s  {run.rate:9.0f} files/s")
    return run


def measure_three(what: str, url: str, home: Path, backend: str, *options: str) -> list[Run]:
    """The first sync, the forced re-sync and the skipped re-sync of ``url``."""
    runs = []
    for label, extra in ((what, ()), ("forced", ("--force",)), ("skip", ())):
        wall, peak, summary = stageline_sync(url, home, backend, *options, *extra)
        units = summary["units"] or summary["content_count"]
        if label == "skip":
            assert summary["unchanged"], summary
        name = what if label == what else f"{label} ({what})"
        run = Run(name, backend, units, wall, summary["seconds"], peak)
        runs.append(run)
        print(
            f"  {name:22} {units:>7} units  {wall:7.2f} s wall  {run.sync_seconds:7.2f} s sync"
            f"  {run.rate:9.0f} units/s  {peak:6.1f} MiB",
            flush=True,
        )
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,30000,100000", help="on_demand sizes")
    parser.add_argument("--immediate-files", type=int, default=10_000)
    parser.add_argument("--backends", default="asyncio,trio")
    parser.add_argument(
        "--directory",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where homes and fixtures go (default /dev/shm, so that the disk is not measured)",
    )
    parser.add_argument("--chart", default=None, help="write the chart to this PNG")
    parser.add_argument(
        "--parse-lines", default="10000,1000000", help="manifest sizes for the parsing runs"
    )
    parser.add_argument("--quick", action="store_true", help="small numbers: a smoke run")
    parser.add_argument("--parse-only", action="store_true", help="only the parsing runs")
    parser.add_argument("--parse-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.parse_child:
        parse_child(args.parse_child)
        return
    if args.quick:
        args.sizes, args.immediate_files, args.parse_lines = "300,600", 40, "1000,20000"
    sizes = [] if args.parse_only else [int(size) for size in args.sizes.split(",") if size]
    backends = [] if args.parse_only else args.backends.split(",")
    root = Path(tempfile.mkdtemp(prefix="stageline-cli-bench-", dir=args.directory))
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    try:
        for size in sizes:
            manifest_only(root / "upstream" / f"od{size}", size)
        if backends:
            write_fixture(root / "upstream" / "immediate", args.immediate_files, KIB)
        port = multiprocessing.Value("i", 0)
        server = multiprocessing.Process(
            target=_serve, args=(str(root / "upstream"), port), daemon=True
        )
        server.start()
        while not port.value:
            time.sleep(0.01)
        base = f"http://127.0.0.1:{port.value}/"
        runs: list[Run] = []
        try:
            for backend in backends:
                print(f"\n{backend}")
                for size in sizes:
                    home = root / f"home-{backend}-{size}"
                    home.mkdir()
                    runs += measure_three(
                        "on_demand", f"{base}od{size}/", home, backend, "--policy", "on_demand"
                    )
                    shutil.rmtree(home)
                home = root / f"home-{backend}-immediate"
                home.mkdir()
                runs += measure_three("immediate", f"{base}immediate/", home, backend)
                manifest = root / "upstream" / "immediate" / "PULP_MANIFEST"
                runs.append(measure_bare(f"{base}immediate/", manifest, backend))
                shutil.rmtree(home)
        finally:
            server.terminate()
            server.join()
        print("\nparsing (the first stage alone, asyncio)")
        for lines in (int(count) for count in args.parse_lines.split(",") if count):
            path = root / f"parse{lines}" / "PULP_MANIFEST"
            write_manifest(path, lines)
            runs.append(measure_parse(path))
            shutil.rmtree(path.parent)
        report(runs)
        if args.chart and sizes:
            chart(runs, sizes, backends, Path(args.chart))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(runs: list[Run]) -> None:
    """The runs as a markdown table, and the targets."""
    print("\n| run | backend | units | wall, s | sync, s | units/s (sync) | peak RSS, MiB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for run in runs:
        peak = f"{run.peak_mib:.0f}" if run.peak_mib else "–"
        print(
            f"| {run.what} | {run.backend} | {run.units} | {run.wall:.2f} | "
            f"{run.sync_seconds:.2f} | {run.rate:,.0f} | {peak} |"
        )
    for backend in sorted({run.backend for run in runs}):
        first = [r for r in runs if r.backend == backend and r.what == "on_demand"]
        forced = [r for r in runs if r.backend == backend and r.what == "forced (on_demand)"]
        if first and forced:
            print(
                f"{backend}: on_demand best {max(r.rate for r in first):,.0f} units/s "
                f"(target {TARGET_ON_DEMAND:,.0f}); forced re-sync best "
                f"{max(r.rate for r in forced):,.0f} units/s (target {TARGET_RESYNC:,.0f})"
            )


def chart(runs: list[Run], sizes: list[int], backends: list[str], path: Path) -> None:
    """Throughput and peak memory against repository size, per run kind and backend."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (pip install 'stageline[bench]')")
        return
    figure, (rates, memory) = plt.subplots(1, 2, figsize=(11, 4.2))
    for backend in backends:
        for what, style in (
            ("on_demand", "-o"),
            ("forced (on_demand)", "--s"),
            ("skip (on_demand)", ":^"),
        ):
            points = [
                next(r for r in runs if r.backend == backend and r.what == what and r.units == size)
                for size in sizes
            ]
            label = f"{what}, {backend}"
            rates.plot(sizes, [p.rate for p in points], style, label=label)
            memory.plot(sizes, [p.peak_mib for p in points], style, label=label)
    rates.set(
        xscale="log",
        yscale="log",
        xlabel="units",
        ylabel="units/s (the sync's own time)",
        title="throughput",
    )
    memory.set(
        xscale="log", xlabel="units", ylabel="peak RSS, MiB", title="peak memory of the command"
    )
    rates.axhline(TARGET_ON_DEMAND, color="grey", linewidth=0.8)
    rates.legend(fontsize=7)
    memory.set_ylim(bottom=0)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"chart: {path}")


if __name__ == "__main__":
    main()
