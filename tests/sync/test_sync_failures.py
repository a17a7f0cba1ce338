"""A sync's failures: a failed download, the skip policy and its cap, cancellation."""

from __future__ import annotations

import anyio
import anyio.to_thread
import pytest

from stageline import (
    DeclarativeVersion,
    DigestMismatch,
    HTTPStatusError,
    PipelineError,
    StageConfigurationError,
    Workspace,
)
from stageline.models import Repository

from ..download._servers import body, stall, status
from ._plugin import IndexFirstStage, ManifestFirstStage, Upstream
from ._support import latest, leftover_temporary_files, paths_in

pytestmark = pytest.mark.anyio


def serve_with_two_bad(upstream: Upstream) -> dict[str, str]:
    """Four listed files: "missing" answers 404, "corrupt" serves other bytes."""
    good = {name: upstream.add(name, f"content of {name}".encode()) for name in ("a", "b")}
    upstream.add("missing", b"never served")
    upstream.server.route("/repo/missing", status(404))
    upstream.add("corrupt", b"the listed bytes")
    upstream.server.route("/repo/corrupt", body(b"THE LISTED BYTES"))
    return good


async def test_a_failed_download_fails_the_sync_and_leaves_no_version_or_file(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    """The download's own error comes out; version 0 stays the latest; no temporary file."""
    upstream.add("a", b"content of a")
    upstream.add("missing", b"never served")
    upstream.server.route("/repo/missing", status(404))
    dv = DeclarativeVersion(
        ManifestFirstStage(upstream.remote()), Repository(name="files"), workspace=any_workspace
    )
    with pytest.raises(HTTPStatusError) as info:
        await dv.acreate()
    assert info.value.url == upstream.url("missing")
    assert info.value.status_code == 404
    assert (await latest(any_workspace)).number == 0
    assert leftover_temporary_files(any_workspace) == []
    assert dv.skipped == []


async def test_the_skip_policy_leaves_failed_units_out_and_reports_each(
    workspace: Workspace, upstream: Upstream
) -> None:
    """on_error="skip": the good files make the version; each bad one is listed with its url."""
    good = serve_with_two_bad(upstream)
    dv = DeclarativeVersion(
        ManifestFirstStage(upstream.remote()),
        Repository(name="files"),
        workspace=workspace,
        on_error="skip",
    )
    version = await dv.acreate()
    assert version is not None
    assert version.content_count == 2
    assert await paths_in(workspace) == good
    skipped = {s.content.relative_path: s for s in dv.skipped}  # type: ignore[attr-defined]
    assert set(skipped) == {"missing", "corrupt"}
    assert skipped["missing"].urls == (upstream.url("missing"),)
    assert isinstance(skipped["missing"].error, HTTPStatusError)
    assert skipped["corrupt"].urls == (upstream.url("corrupt"),)
    assert isinstance(skipped["corrupt"].error, DigestMismatch)
    assert leftover_temporary_files(workspace) == []


async def test_past_max_skipped_the_next_failure_fails_the_sync(
    workspace: Workspace, upstream: Upstream
) -> None:
    """With max_skipped=1 the second failed unit fails the sync, which commits nothing."""
    serve_with_two_bad(upstream)
    dv = DeclarativeVersion(
        ManifestFirstStage(upstream.remote()),
        Repository(name="files"),
        workspace=workspace,
        on_error="skip",
        max_skipped=1,
        # One unit at a time, so that the failures come in manifest order.
        max_concurrent_content=1,
    )
    with pytest.raises(DigestMismatch) as info:
        await dv.acreate()
    assert any("max_skipped is 1" in note for note in info.value.__notes__)
    assert [s.content.relative_path for s in dv.skipped] == ["missing"]  # type: ignore[attr-defined]
    assert (await latest(workspace)).number == 0
    assert leftover_temporary_files(workspace) == []


async def test_a_skip_cap_that_is_not_reached_lets_the_sync_finish(
    workspace: Workspace, upstream: Upstream
) -> None:
    """max_skipped=2 with two failures: the sync ends with a version and both reported."""
    good = serve_with_two_bad(upstream)
    dv = DeclarativeVersion(
        ManifestFirstStage(upstream.remote()),
        Repository(name="files"),
        workspace=workspace,
        on_error="skip",
        max_skipped=2,
    )
    assert await dv.acreate() is not None
    assert await paths_in(workspace) == good
    assert len(dv.skipped) == 2


async def test_a_skipped_index_wakes_the_first_stage_awaiting_it(
    workspace: Workspace, upstream: Upstream
) -> None:
    """Awaiting a unit the skip policy dropped raises PipelineError instead of hanging."""
    upstream.add("f1", b"file 1", listed=False)
    upstream.add_index("root.idx", [upstream.file_line("f1")])
    upstream.server.route("/repo/root.idx", status(404))
    dv = DeclarativeVersion(
        IndexFirstStage(upstream.remote(), workspace.storage),
        Repository(name="files"),
        workspace=workspace,
        on_error="skip",
    )
    with anyio.fail_after(20), pytest.raises(PipelineError) as info:
        await dv.acreate()
    assert "was skipped" in str(info.value)
    assert isinstance(info.value.__cause__, HTTPStatusError)
    assert (await latest(workspace)).number == 0


async def test_cancelling_a_sync_mid_download_leaves_no_version_or_file(
    workspace: Workspace, upstream: Upstream
) -> None:
    """Cancelled while a body arrives: nothing committed, the temporary area removed."""
    upstream.add("a", b"content of a")
    data = b"x" * 100_000
    upstream.add("slow", data)
    upstream.server.route("/repo/slow", stall(data, send=1000))
    dv = DeclarativeVersion(
        ManifestFirstStage(upstream.remote()), Repository(name="files"), workspace=workspace
    )
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(dv.acreate)
            assert await anyio.to_thread.run_sync(upstream.server.state.body_started.wait, 10)
            tg.cancel_scope.cancel()
    assert (await latest(workspace)).number == 0
    assert leftover_temporary_files(workspace) == []


def test_wrong_failure_policy_arguments_are_refused(workspace: Workspace) -> None:
    """on_error and max_skipped are checked when the sync is made."""
    first = ManifestFirstStage.__new__(ManifestFirstStage)
    repository = Repository(name="files")
    with pytest.raises(StageConfigurationError, match="on_error"):
        DeclarativeVersion(first, repository, workspace=workspace, on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(StageConfigurationError, match="max_skipped"):
        DeclarativeVersion(first, repository, workspace=workspace, max_skipped=-1)
