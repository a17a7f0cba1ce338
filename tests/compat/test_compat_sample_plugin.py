"""The porting guide's sample plugin syncs end to end, and the guide shows exactly its code.

The plugin (sample_plugin.py) is written the asyncio-era way on stageline_compat; it syncs
from a real HTTP server on 127.0.0.1 into a workspace on a real SQLite file, from
synchronous code (``DeclarativeVersion.create()``). Asyncio-only by nature: the shim is
the asyncio API (see conftest.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import pytest

from stageline import Workspace
from stageline.models import Content, Repository
from stageline.progress import DOWNLOADING_ARTIFACTS_CODE, MemoryReporter

from ..download._servers import LocalServer, body
from .sample_plugin import CatalogFile, CatalogIndex, CatalogRemote, synchronize

GUIDE = Path(__file__).parents[2] / "docs" / "porting.md"
SAMPLE = Path(__file__).parent / "sample_plugin.py"


class Catalog:
    """A catalog published under /catalog/ on the test's server."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.lines: list[str] = []

    def remote(self, **settings: object) -> CatalogRemote:
        return CatalogRemote(
            url=self.server.url("/catalog/"),
            name="catalog",
            max_retries=0,
            **settings,  # type: ignore[arg-type]
        )

    def serve(self, path: str, data: bytes) -> str:
        self.server.route(f"/catalog/{path}", body(data))
        return hashlib.sha256(data).hexdigest()

    def file_line(self, path: str, data: bytes) -> str:
        return f"file,{path},{self.serve(path, data)},{len(data)}"

    def publish(self, lines: list[str]) -> None:
        self.serve("CATALOG", "".join(f"{line}\n" for line in lines).encode())

    def file_requests(self) -> list[str]:
        return [r.path for r in self.server.requests if not r.path.endswith("/CATALOG")]


@pytest.fixture
def catalog(server: LocalServer) -> Catalog:
    """A catalog: a file at the top, and an index listing two files of section docs."""
    catalog = Catalog(server)
    index = "\n".join(
        [
            catalog.file_line("docs/intro.txt", b"intro\n"),
            catalog.file_line("docs/usage.txt", b"usage\n"),
        ]
    ).encode()
    catalog.publish(
        [
            catalog.file_line("README", b"read me\n"),
            f"index,docs.idx,{catalog.serve('docs.idx', index)}",
        ]
    )
    return catalog


def units_of(workspace: Workspace, repository: str = "catalog") -> list[Content]:
    """The content of the repository's latest version."""

    async def read() -> list[Content]:
        async with workspace.open_store() as store:
            version = await store.latest_version(await store.get_repository(repository))
            return [unit async for chunk in store.iter_content(version) for unit in chunk]

    return asyncio.run(read())


def test_the_sample_plugin_syncs_from_synchronous_code(
    catalog: Catalog, workspace: Workspace
) -> None:
    """A first sync brings every file and index, with sections and progress reports."""
    reporter = MemoryReporter()
    version = synchronize(
        catalog.remote(),
        Repository(name="catalog"),
        workspace=workspace,
        reporters=[reporter],
    )
    assert version is not None
    assert (version.number, version.content_count) == (1, 4)
    files = {u.relative_path: u for u in units_of(workspace) if isinstance(u, CatalogFile)}
    assert {path: unit.section for path, unit in files.items()} == {
        "README": "",
        "docs/intro.txt": "docs.idx",
        "docs/usage.txt": "docs.idx",
    }
    assert any(isinstance(u, CatalogIndex) for u in units_of(workspace))
    assert reporter.final("sync.downloading.metadata").done == 1
    parsing = reporter.final("sync.parsing.metadata")
    assert (parsing.done, parsing.total) == (4, 4)
    assert reporter.final(DOWNLOADING_ARTIFACTS_CODE).done == 4


def test_a_resync_without_changes_downloads_nothing_and_makes_no_version(
    catalog: Catalog, workspace: Workspace
) -> None:
    """The second sync finds everything saved: no new version, only the CATALOG fetched."""
    synchronize(catalog.remote(), Repository(name="catalog"), workspace=workspace)
    fetched = len(catalog.file_requests())
    assert synchronize(catalog.remote(), Repository(name="catalog"), workspace=workspace) is None
    assert len(catalog.file_requests()) == fetched


def test_a_mirror_sync_drops_what_the_catalog_no_longer_lists(
    catalog: Catalog, workspace: Workspace
) -> None:
    """mirror=True: the association stage the sync appends removes what was not declared."""
    synchronize(catalog.remote(), Repository(name="catalog"), workspace=workspace)
    catalog.publish([catalog.file_line("README", b"read me, edited\n")])
    version = synchronize(
        catalog.remote(), Repository(name="catalog"), mirror=True, workspace=workspace
    )
    assert version is not None
    assert (version.number, version.content_count) == (2, 1)
    (unit,) = units_of(workspace)
    assert isinstance(unit, CatalogFile)
    assert unit.sha256 == hashlib.sha256(b"read me, edited\n").hexdigest()


def test_an_on_demand_sync_downloads_only_the_indexes(
    catalog: Catalog, workspace: Workspace
) -> None:
    """With an on_demand remote the files stay deferred; the index is still read."""
    version = synchronize(
        catalog.remote(policy="on_demand"), Repository(name="catalog"), workspace=workspace
    )
    assert version is not None
    assert version.content_count == 4
    assert catalog.file_requests() == ["/catalog/docs.idx"]


#: The guide's ```python block headed "# sample_plugin.py".
BLOCK = re.compile(r"```python\n# sample_plugin\.py\n(?P<code>.*?)```", re.DOTALL)


def test_the_porting_guide_shows_the_tested_plugin() -> None:
    """docs/porting.md shows sample_plugin.py as it is, so the guide's code is the tested code."""
    match = BLOCK.search(GUIDE.read_text())
    assert match, "docs/porting.md has no ```python block starting with '# sample_plugin.py'"
    assert match["code"] == SAMPLE.read_text(), (
        "docs/porting.md and tests/compat/sample_plugin.py differ: copy the file into the guide"
    )
