"""ArtifactDownloader's progress reports: files (once per file) and bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.sync._plugin import Upstream, file_unit

from stageline.download import DownloaderFactory
from stageline.progress import (
    DOWNLOADING_ARTIFACTS_CODE,
    DOWNLOADING_ARTIFACTS_MESSAGE,
    DOWNLOADING_BYTES_CODE,
    MemoryReporter,
    ProgressState,
    reporting_to,
)
from stageline.stages import ArtifactDownloader
from stageline.storage import use_temp_dir
from stageline.testing import run_stage

pytestmark = pytest.mark.anyio


async def test_a_file_several_units_declare_counts_once(upstream: Upstream, tmp_path: Path) -> None:
    """Three units share a file, a fourth has its own: 2 files and their bytes, completed."""
    shared = upstream.add("shared", b"shared bytes")
    own = upstream.add("own", b"own")
    remote = upstream.remote()
    units = [file_unit(remote, "shared", shared, 12) for _ in range(3)]
    units.append(file_unit(remote, "own", own, 3))
    reporter = MemoryReporter()
    with use_temp_dir(tmp_path), reporting_to(reporter):
        async with DownloaderFactory() as factory:
            await run_stage(ArtifactDownloader(factory), units)
    files = reporter.final(DOWNLOADING_ARTIFACTS_CODE)
    assert (files.message, files.state, files.done) == (
        DOWNLOADING_ARTIFACTS_MESSAGE,
        ProgressState.COMPLETED,
        2,
    )
    assert reporter.final(DOWNLOADING_BYTES_CODE).done == 12 + 3
