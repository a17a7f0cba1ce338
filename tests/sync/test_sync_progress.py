"""The default stages report progress: downloads, association and (mirror) unassociation."""

from __future__ import annotations

import pytest

from stageline import DeclarativeVersion, HTTPStatusError, StageConfigurationError, Workspace
from stageline.models import Remote, Repository
from stageline.progress import (
    ASSOCIATING_CONTENT_CODE,
    DOWNLOADING_ARTIFACTS_CODE,
    DOWNLOADING_BYTES_CODE,
    UNASSOCIATING_CONTENT_CODE,
    MemoryReporter,
    ProgressState,
    reporting_to,
)

from ..download._servers import status
from ._plugin import ManifestFirstStage, Upstream

pytestmark = pytest.mark.anyio


def version_of(workspace: Workspace, upstream: Upstream, **options: object) -> DeclarativeVersion:
    return DeclarativeVersion(
        ManifestFirstStage(upstream.remote()),
        Repository(name="files"),
        workspace=workspace,
        **options,  # type: ignore[arg-type]
    )


def counts(reporter: MemoryReporter, code: str) -> tuple[ProgressState, int]:
    final = reporter.final(code)
    return final.state, final.done


async def test_a_sync_reports_its_downloads_and_association(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """Three files: 3 downloaded, their bytes, 3 associated; additive: no unassociation."""
    for name in ("a", "b", "c"):
        upstream.add(name, f"bytes of {name}".encode())
    reporter = MemoryReporter()
    assert await version_of(any_workspace, upstream, reporters=[reporter]).acreate()
    assert counts(reporter, DOWNLOADING_ARTIFACTS_CODE) == (ProgressState.COMPLETED, 3)
    assert counts(reporter, DOWNLOADING_BYTES_CODE) == (ProgressState.COMPLETED, 3 * 10)
    assert counts(reporter, ASSOCIATING_CONTENT_CODE) == (ProgressState.COMPLETED, 3)
    assert UNASSOCIATING_CONTENT_CODE not in reporter.codes


async def test_a_mirror_resync_counts_only_what_changed(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """Upstream drops c and adds d: 1 download, 1 associated, 1 un-associated."""
    for name in ("a", "b", "c"):
        upstream.add(name, f"bytes of {name}".encode())
    assert await version_of(any_workspace, upstream).acreate()
    upstream.remove("c")
    upstream.add("d", b"bytes of d")
    reporter = MemoryReporter()
    assert await version_of(any_workspace, upstream, mirror=True, reporters=[reporter]).acreate()
    assert counts(reporter, DOWNLOADING_ARTIFACTS_CODE) == (ProgressState.COMPLETED, 1)
    assert counts(reporter, ASSOCIATING_CONTENT_CODE) == (ProgressState.COMPLETED, 1)
    assert counts(reporter, UNASSOCIATING_CONTENT_CODE) == (ProgressState.COMPLETED, 1)


async def test_a_failing_sync_ends_the_download_report_failed(
    workspace: Workspace, upstream: Upstream
) -> None:
    """A 404 fails "Downloading Artifacts"; the stages it stops end their reports canceled."""
    upstream.add("missing", b"never served")
    upstream.server.route("/repo/missing", status(404))
    reporter = MemoryReporter()
    with pytest.raises(HTTPStatusError):
        await version_of(workspace, upstream, mirror=True, reporters=[reporter]).acreate()
    assert counts(reporter, DOWNLOADING_ARTIFACTS_CODE) == (ProgressState.FAILED, 0)
    assert reporter.final(ASSOCIATING_CONTENT_CODE).state is ProgressState.CANCELED
    assert reporter.final(UNASSOCIATING_CONTENT_CODE).state is ProgressState.CANCELED


async def test_reporters_installed_around_the_call_hear_the_sync_too(
    workspace: Workspace, upstream: Upstream
) -> None:
    """reporting_to() around acreate() and reporters= both get every report, once each."""
    upstream.add("a", b"bytes of a")
    around, given = MemoryReporter(), MemoryReporter()
    with reporting_to(around):
        assert await version_of(workspace, upstream, reporters=[given]).acreate()
    assert around.codes == given.codes
    assert counts(around, DOWNLOADING_ARTIFACTS_CODE) == (ProgressState.COMPLETED, 1)


def test_a_reporter_without_the_three_methods_is_refused(workspace: Workspace) -> None:
    """reporters=[object()] fails when the DeclarativeVersion is made, naming the value."""
    with pytest.raises(StageConfigurationError, match="reporters"):
        DeclarativeVersion(
            ManifestFirstStage(Remote(url="http://127.0.0.1:9/repo/", name="r")),
            Repository(name="files"),
            workspace=workspace,
            reporters=[object()],  # type: ignore[list-item]
        )
