"""Benchmark of the store's batch operations (a script; pytest does not collect it).

Run:
    .venv/bin/python tests/benchmarks/store.py [--units 100000] [--backend asyncio|trio]
        [--postgresql URL | --no-postgresql]

Measures, on a fresh SQLite file and (if a URL is given or STAGELINE_TEST_POSTGRESQL_URL is
set) a fresh PostgreSQL schema:
  1. insert-or-get N new content units with one artifact each, in batches of 500
     (save_artifacts + save_content with content artifacts);
  2. find_content of N existing units, in batches of 500;
  3. a repository version adding N units (add_content in batches of 500);
  4. a version with one change on an N-unit repository vs. a 1 000-unit one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import uuid
from typing import ClassVar

import anyio
import attrs
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from stageline.models import Artifact, Content, ContentArtifact, Repository
from stageline.store import Store, open_store

BATCH = 500


@attrs.define(eq=False, kw_only=True)
class BenchFile(Content):
    type_name: ClassVar[str] = "bench.file"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("relative_path", "digest")
    repo_key_fields: ClassVar[tuple[str, ...]] = ("relative_path",)

    relative_path: str
    digest: str
    size: int = 0


def sha(n: int) -> str:
    return f"{n:064x}"


def unit(n: int) -> BenchFile:
    return BenchFile(relative_path=f"dir{n % 97}/file{n}.bin", digest=sha(n), size=n)


async def insert(store: Store, start: int, count: int) -> list[Content]:
    saved: list[Content] = []
    for first in range(start, start + count, BATCH):
        numbers = range(first, min(first + BATCH, start + count))
        artifacts = await store.save_artifacts([Artifact(sha256=sha(n), size=n) for n in numbers])
        units = [unit(n) for n in numbers]
        cas = [
            ContentArtifact(content=u, artifact=a, relative_path=u.relative_path)
            for u, a in zip(units, artifacts, strict=True)
        ]
        saved += await store.save_content(units, cas)
    return saved


async def lookup(store: Store, count: int) -> int:
    found = 0
    for first in range(0, count, BATCH):
        result = await store.find_content(
            [unit(n) for n in range(first, min(first + BATCH, count))]
        )
        found += sum(1 for r in result if r is not None)
    return found


async def one_change_versions(store: Store, repository: Repository, extra: list[Content]) -> float:
    """Median seconds of a version that adds one unit (each run adds a different one)."""
    times = []
    for item in extra:
        started = time.perf_counter()
        async with store.new_version(repository) as version:
            await version.add_content([item])
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class Clock:
    """Wall time and this process's CPU time (both threads) since it was made.

    The CPU figure stays meaningful on a machine shared with other work; for PostgreSQL it
    leaves out the server's own CPU.
    """

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def rates(self, count: int) -> tuple[float, float]:
        return (
            count / (time.perf_counter() - self.wall),
            count / (time.process_time() - self.cpu),
        )


async def run(url: str, label: str, units: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    async with open_store(url) as store:
        clock = Clock()
        saved = await insert(store, 0, units)
        figures["insert units/s (wall)"], figures["insert units/s (CPU)"] = clock.rates(units)

        clock = Clock()
        found = await lookup(store, units)
        assert found == units, (found, units)
        figures["lookup units/s (wall)"], figures["lookup units/s (CPU)"] = clock.rates(units)

        big = await store.create_repository(Repository(name=f"big-{uuid.uuid4().hex[:6]}"))
        clock = Clock()
        async with store.new_version(big) as version:
            for first in range(0, units, BATCH):
                await version.add_content(saved[first : first + BATCH])
        wall, cpu = clock.rates(1)
        figures["version adding all s (wall)"] = 1 / wall
        figures["version adding all s (CPU)"] = 1 / cpu
        assert version.result is not None
        assert version.result.content_count == units

        small = await store.create_repository(Repository(name=f"small-{uuid.uuid4().hex[:6]}"))
        async with store.new_version(small) as version:
            await version.add_content(saved[:1000])
        extra = await insert(store, units, 80)
        small_ms = 1000 * await one_change_versions(store, small, extra[:40])
        big_ms = 1000 * await one_change_versions(store, big, extra[40:])
        figures["one-change version on 1000 ms"] = small_ms
        figures[f"one-change version on {units} ms"] = big_ms
        figures["one-change ratio big/small"] = big_ms / small_ms
    print(f"\n{label}, {units:,} units, load average {os.getloadavg()[0]:.2f}")
    for name, value in figures.items():
        print(f"  {name:42} {value:12,.2f}" if value < 10 else f"  {name:42} {value:12,.0f}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--postgresql", default=os.environ.get("STAGELINE_TEST_POSTGRESQL_URL"))
    parser.add_argument("--no-postgresql", action="store_true")
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="stageline-bench-")
    try:
        anyio.run(
            run, f"{directory}/bench.db", "SQLite (WAL, file)", args.units, backend=args.backend
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if args.postgresql and not args.no_postgresql:
        base = sa.make_url(args.postgresql)
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(base, poolclass=NullPool)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        try:
            url = base.update_query_dict({"options": f"-csearch_path={schema}"})
            anyio.run(
                run,
                url.render_as_string(hide_password=False),
                "PostgreSQL",
                args.units,
                backend=args.backend,
            )
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()


if __name__ == "__main__":
    main()
