"""Benchmark of ArtifactStorage.store(), which verifies every file (a script; not collected).

Run:
    .venv/bin/python tests/benchmarks/storage.py [--files 10000] [--size 1024]
        [--large-mib 256] [--backend asyncio|trio] [--dir DIR]

Measures, in a fresh storage under DIR (default: the system temporary directory):
  1. store() of N small downloads (files in the temporary area, moved in), one call;
  2. store() of N small plugin files (outside the storage, copied in), one call;
  3. store() of one large download (moved in) and one large plugin file (copied in);
  4. store() of the same N small downloads again, each digest already held (the held
     file is hashed against the new copy, which is then dropped);
and, for scale, sha256 alone over the large file's bytes in memory.
Files are written (and so in the page cache) just before each run, as after a download.
Times are CPU seconds of the process (all threads): on a shared machine they vary less than
the wall clock, and they leave out waiting for fsync (run with --dir on a tmpfs to make
fsync free and compare CPU work only).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import anyio

from stageline.models import Artifact
from stageline.storage import ArtifactStorage


def _small(number: int, size: int) -> bytes:
    return number.to_bytes(8, "big") * (size // 8)


def _write_small(folder: Path, files: int, size: int) -> list[Artifact]:
    artifacts = []
    for number in range(files):
        data = _small(number, size)
        path = folder / f"f{number}"
        path.write_bytes(data)
        sha256 = hashlib.sha256(data).hexdigest()
        artifacts.append(Artifact(sha256=sha256, size=len(data), file=path))
    return artifacts


def _write_large(path: Path, data: bytes, sha256: str) -> list[Artifact]:
    path.write_bytes(data)
    return [Artifact(sha256=sha256, size=len(data), file=path)]


async def _timed_store(storage: ArtifactStorage, artifacts: list[Artifact]) -> float:
    start = time.process_time()
    await storage.store(artifacts)
    return time.process_time() - start


def _report(what: str, seconds: float, amount: float, unit: str) -> None:
    print(f"{what:<40} {seconds:6.2f} s CPU  {amount / seconds:8.0f} {unit}/s")


async def main(args: argparse.Namespace) -> None:
    base = Path(tempfile.mkdtemp(prefix="stageline-bench-", dir=args.dir))
    try:
        storage = ArtifactStorage(base / "storage")
        outside = base / "plugin"
        outside.mkdir()
        files, size, mib = args.files, args.size, args.large_mib

        async with storage.temporary_area() as area:
            moved = await _timed_store(storage, _write_small(area, files, size))
        _report(f"{files} x {size} B downloads, moved", moved, files, "files")
        shutil.rmtree(storage.artifacts_dir)

        copied = await _timed_store(storage, _write_small(outside, files, size))
        _report(f"{files} x {size} B plugin files, copied", copied, files, "files")

        async with storage.temporary_area() as area:
            again = await _timed_store(storage, _write_small(area, files, size))
        _report(f"{files} x {size} B again, already held", again, files, "files")

        data = os.urandom(mib * 1024 * 1024)
        start = time.process_time()
        sha256 = hashlib.sha256(data).hexdigest()
        _report(f"sha256 of {mib} MiB in memory", time.process_time() - start, mib, "MiB")
        async with storage.temporary_area() as area:
            large = await _timed_store(storage, _write_large(area / "large", data, sha256))
        _report(f"{mib} MiB download, moved", large, mib, "MiB")
        shutil.rmtree(storage.artifacts_dir)
        large = await _timed_store(storage, _write_large(outside / "large", data, sha256))
        _report(f"{mib} MiB plugin file, copied", large, mib, "MiB")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--large-mib", type=int, default=256)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--dir", default=None)
    arguments = parser.parse_args()
    anyio.run(main, arguments, backend=arguments.backend)
