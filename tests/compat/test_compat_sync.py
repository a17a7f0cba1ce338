"""The shim's DeclarativeVersion and default stages in real syncs, and its ProgressReport.

Syncs run against a real HTTP server on 127.0.0.1 into a workspace on a real SQLite
file. Asyncio-only by nature: the shim is the asyncio API (see conftest.py); the Trio
test checks the refusal.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from stageline import UsageError, Workspace
from stageline.models import DownloadPolicy, Repository
from stageline.progress import MemoryReporter, reporting_to
from stageline.stages import AlternateContentSource
from stageline_compat import (
    ContentUnassociation,
    DeclarativeContent,
    DeclarativeVersion,
    ProgressReport,
)

from ..download._servers import LocalServer, running
from ..stages import HANG_TIMEOUT
from ..sync._plugin import ManifestFirstStage, Upstream
from .sample_plugin import CatalogDeclarativeVersion, CatalogFile, CatalogFirstStage
from .test_compat_sample_plugin import Catalog, units_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def catalog(server: LocalServer) -> Catalog:
    """A catalog of three files at the top level."""
    catalog = Catalog(server)
    catalog.publish([catalog.file_line(f"f{n}.txt", f"file {n}\n".encode()) for n in range(3)])
    return catalog


def test_the_default_pipeline_with_a_budget_syncs(catalog: Catalog, workspace: Workspace) -> None:
    """DeclarativeVersion's own pipeline_stages, with a budget of one unit, syncs it all."""
    dv = DeclarativeVersion(
        CatalogFirstStage(catalog.remote(), deferred_download=False),
        Repository(name="catalog"),
        workspace=workspace,
        max_pending_items=1,
        batch_size=2,
    )
    version = dv.create()
    assert version is not None
    assert version.content_count == 3
    assert dv.budget is not None
    assert dv.budget.peak_items == 1
    assert sorted(u.relative_path for u in units_of(workspace)) == [  # type: ignore[attr-defined]
        "f0.txt",
        "f1.txt",
        "f2.txt",
    ]


async def test_acreate_runs_inside_a_running_asyncio_loop(
    catalog: Catalog, workspace: Workspace
) -> None:
    """await dv.acreate() syncs inside the test's own event loop."""
    with anyio.fail_after(HANG_TIMEOUT):
        dv = DeclarativeVersion(
            CatalogFirstStage(catalog.remote(), deferred_download=False),
            Repository(name="catalog"),
            workspace=workspace,
        )
        version = await dv.acreate()
    assert version is not None
    assert version.content_count == 3


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_acreate_refuses_trio(catalog: Catalog, workspace: Workspace) -> None:
    """Under Trio the shim's sync refuses at once and names stageline's own API."""
    dv = DeclarativeVersion(
        CatalogFirstStage(catalog.remote(), deferred_download=False),
        Repository(name="catalog"),
        workspace=workspace,
    )
    with pytest.raises(UsageError, match="asyncio only"):
        await dv.acreate()


async def test_content_unassociation_removes_the_units_that_flow_through_it(
    catalog: Catalog, workspace: Workspace
) -> None:
    """The shim's ContentUnassociation removes each unit it reads from the new version."""
    with anyio.fail_after(HANG_TIMEOUT):
        await CatalogDeclarativeVersion(
            CatalogFirstStage(catalog.remote(), deferred_download=False),
            Repository(name="catalog"),
            workspace=workspace,
        ).acreate()
        async with workspace.open_store() as store:
            repository = await store.get_repository("catalog")
            version = await store.latest_version(repository)
            units = [u async for chunk in store.iter_content(version) for u in chunk]
            removed = [u for u in units if getattr(u, "relative_path", "") == "f1.txt"]
            async with store.new_version(repository) as new_version:
                in_q: asyncio.Queue[Any] = asyncio.Queue()
                out_q: asyncio.Queue[Any] = asyncio.Queue()
                for unit in removed:
                    in_q.put_nowait(DeclarativeContent(unit))
                in_q.put_nowait(None)
                stage = ContentUnassociation(new_version)
                stage._connect(in_q, out_q)
                await stage()
            version = await store.latest_version(repository)
            left = [u async for chunk in store.iter_content(version) for u in chunk]
    assert out_q.qsize() == 2  # the item and the end marker
    assert sorted(u.relative_path for u in left if isinstance(u, CatalogFile)) == [
        "f0.txt",
        "f2.txt",
    ]


async def test_progress_report_has_the_asyncio_era_calls() -> None:
    """aincrement, aincrease_by, save and asave count and tell the reporters."""
    reporter = MemoryReporter()
    with reporting_to(reporter):
        async with ProgressReport(message="Parsing", code="tests.parsing", total=5) as report:
            await report.aincrement()
            await report.aincrease_by(2)
            report.save()
            await report.asave()
            report.increment()
    final = reporter.final("tests.parsing")
    assert (final.done, final.total) == (4, 5)
    assert [event.kind for event in reporter.events if event.kind == "updated"] == ["updated"]


async def test_acs_fetches_from_the_alternate_source_first(
    server: LocalServer, workspace: Workspace
) -> None:
    """DeclarativeVersion(acs=True) fetches the files the workspace's source has there."""
    files = {"a": b"the bytes of a", "b": b"the bytes of b", "c": b"the bytes of c"}
    with running(LocalServer()) as mirror_server:
        mirror = Upstream(mirror_server, prefix="/mirror/")
        for path in ("a", "b"):
            mirror.add(path, files[path])
        upstream = Upstream(server)
        for path, data in files.items():
            upstream.add(path, data)
        mirror_remote = mirror.remote(name="mirror", policy=DownloadPolicy.ON_DEMAND)
        with anyio.fail_after(HANG_TIMEOUT):
            assert await DeclarativeVersion(
                ManifestFirstStage(mirror_remote), Repository(name="acs"), workspace=workspace
            ).acreate()
            with_source = Workspace(
                workspace.home,
                database=workspace.database,
                artifacts=workspace.storage.root,
                alternate_sources=[AlternateContentSource(mirror_remote)],
            )
            version = await DeclarativeVersion(
                ManifestFirstStage(upstream.remote()),
                Repository(name="files"),
                acs=True,
                workspace=with_source,
            ).acreate()
        assert version is not None
        assert version.content_count == 3
        assert sorted(mirror.file_requests()) == ["/mirror/a", "/mirror/b"]
        assert upstream.file_requests() == ["/repo/c"]
