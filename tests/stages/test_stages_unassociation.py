"""ContentUnassociation: what a mirror sync saw is recorded in the database, not in memory."""

from __future__ import annotations

import sqlite3
import tracemalloc
from pathlib import Path

import anyio
import pytest
from tests.sync._plugin import SyncFile

from stageline import DeclarativeContent, EndStage, Stage, StageConfigurationError, create_pipeline
from stageline.models import Content, Repository
from stageline.stages import ContentUnassociation
from stageline.store import NewVersion, Store
from stageline.testing import run_stage

pytestmark = pytest.mark.anyio


async def repository_of(store: Store, size: int, name: str = "files") -> list[Content]:
    """A repository whose latest version holds ``size`` saved units; returns them."""
    repository = await store.create_repository(Repository(name=name))
    units: list[Content] = []
    async with store.new_version(repository) as first:
        for start in range(0, size, 5000):
            saved = await store.save_content(
                [
                    SyncFile(relative_path=f"{name}/{n}", sha256=f"{n:064x}", size=n)
                    for n in range(start, min(size, start + 5000))
                ]
            )
            await first.add_content(saved)
            units += saved
    return units


def seen_in_database(path: Path) -> set[int]:
    with sqlite3.connect(path) as conn:
        return {pk for (pk,) in conn.execute("SELECT content_id FROM new_version_seen")}


class Checker(Stage):
    """Last stage: checks each item's unit is recorded as seen when the item arrives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.checked = 0

    async def run(self) -> None:
        async for d in self.items():
            assert d.content.pk in seen_in_database(self.path)
            self.checked += 1


async def test_each_unit_is_recorded_in_the_database_before_it_is_passed_on(
    store: Store, tmp_path: Path
) -> None:
    """Units are marked batch by batch in the database; at the end only the unseen go."""
    units = await repository_of(store, 10)
    repository = await store.get_repository("files")
    checker = Checker(tmp_path / "stages.db")
    async with store.new_version(repository) as new_version:
        stream = [DeclarativeContent(unit) for unit in units[:7]]
        stage = ContentUnassociation(new_version, batch_size=3)
        with anyio.fail_after(30):
            await create_pipeline([Feeder(stream), stage, checker])
    assert checker.checked == 7
    assert new_version.result is not None
    assert new_version.result.removed_count == 3
    assert seen_in_database(tmp_path / "stages.db") == set()


async def test_a_batch_size_below_one_is_refused(store: Store) -> None:
    """batch_size=0 is refused with the argument named."""
    repository = await store.create_repository(Repository(name="files"))
    async with store.new_version(repository) as new_version:
        with pytest.raises(StageConfigurationError, match="batch_size"):
            ContentUnassociation(new_version, batch_size=0)


async def test_unsaved_units_pass_and_are_not_marked(store: Store) -> None:
    """An item whose unit is unsaved passes on; it keeps nothing, so everything goes."""
    units = await repository_of(store, 2)
    repository = await store.get_repository("files")
    unsaved = DeclarativeContent(SyncFile(relative_path="new", sha256="0" * 64, size=0))
    async with store.new_version(repository) as new_version:
        assert await run_stage(ContentUnassociation(new_version), [unsaved]) == [unsaved]
    assert new_version.result is not None
    assert new_version.result.removed_count == len(units)


class Feeder(Stage):
    """First stage: puts the given items."""

    def __init__(self, items: list[DeclarativeContent]) -> None:
        self.items_to_put = items

    async def run(self) -> None:
        for d in self.items_to_put:
            await self.put(d)


async def unassociation_peak(new_version: NewVersion, stream: list[DeclarativeContent]) -> int:
    """The tracemalloc peak, in bytes, of ContentUnassociation over ``stream``."""
    pipeline = [Feeder(stream), ContentUnassociation(new_version), EndStage()]
    tracemalloc.start()
    try:
        await create_pipeline(pipeline)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


@pytest.mark.slow
async def test_memory_does_not_grow_with_the_repository(store: Store) -> None:
    """A mirror of 20 000 units peaks no higher than one of 2 000, give or take 256 KiB.

    The set of the units' keys the stage kept before peaked 2.4 MiB higher at 20 000.
    """
    peaks: dict[int, int] = {}
    for size in (2_000, 20_000):
        units = await repository_of(store, size, name=f"r{size}")
        repository = await store.get_repository(f"r{size}")
        # The stream's items exist before the measurement, as they would in a sync's
        # earlier stages: the stage's own allocations are what is measured. The last ten
        # units are not in the stream, so the stage removes them.
        stream = [DeclarativeContent(unit) for unit in units[:-10]]
        with anyio.fail_after(120):
            async with store.new_version(repository) as new_version:
                peaks[size] = await unassociation_peak(new_version, stream)
        assert new_version.result is not None
        assert new_version.result.removed_count == 10
    assert peaks[20_000] <= peaks[2_000] + 256 * 1024, peaks
