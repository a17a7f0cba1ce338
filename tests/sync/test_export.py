"""Exporting a version: its files under their paths, a manifest, deferred files fetched."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from stageline import ContentNotFound, DigestMismatch, ExportError, InvalidValueError, Workspace
from stageline.models import DownloadPolicy
from stageline.sync import MANIFEST_NAME, export_version

from ..download._servers import body, hold_until_in_flight
from ._on_demand_support import FILES, synced
from ._plugin import Upstream, sha256_of
from ._support import content_artifacts, leftover_temporary_files

pytestmark = pytest.mark.anyio


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` by its relative path (a blocking call)."""
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def manifest_of(files: dict[str, bytes]) -> bytes:
    """The manifest an export of ``files`` writes."""
    return "".join(
        f"{path},{sha256_of(data)},{len(data)}\n" for path, data in sorted(files.items())
    ).encode()


async def test_export_writes_the_files_and_a_manifest(
    workspace: Workspace, upstream: Upstream, tmp_path: Path
) -> None:
    """Each file lands at its relative path, the manifest lists them in path order, and the
    counts say so; nothing is fetched for a version synced immediately."""
    await synced(workspace, upstream, DownloadPolicy.IMMEDIATE)
    target = tmp_path / "out" / "new"
    result = await export_version(workspace, "files", target)
    assert tree(target) == {**FILES, MANIFEST_NAME: manifest_of(FILES)}
    assert (result.repository, result.version, result.directory) == ("files", 1, target)
    assert result.manifest == target / MANIFEST_NAME
    assert (result.files, result.bytes, result.fetched) == (
        len(FILES),
        sum(map(len, FILES.values())),
        0,
    )


async def test_export_fetches_deferred_files_and_saves_on_demand_ones(
    workspace: Workspace, upstream: Upstream, tmp_path: Path
) -> None:
    """An on_demand version's files are fetched (once each) and saved while exported."""
    await synced(workspace, upstream, DownloadPolicy.ON_DEMAND)
    result = await export_version(workspace, "files", tmp_path / "out", version=1)
    assert result.fetched == len(FILES)
    assert tree(tmp_path / "out") == {**FILES, MANIFEST_NAME: manifest_of(FILES)}
    assert sorted(upstream.file_requests()) == sorted(f"/repo/{path}" for path in FILES)
    assert all(ca.artifact is not None for ca in (await content_artifacts(workspace)).values())
    again = await export_version(workspace, "files", tmp_path / "again")
    assert again.fetched == 0
    assert leftover_temporary_files(workspace) == []


async def test_export_refuses_a_folder_that_is_not_empty_unless_told(
    workspace: Workspace, upstream: Upstream, tmp_path: Path
) -> None:
    """A non-empty folder, or a file, is refused with ExportError; overwrite=True writes
    over files at the same paths and leaves the others."""
    await synced(workspace, upstream, DownloadPolicy.IMMEDIATE)
    target = tmp_path / "out"
    target.mkdir()
    (target / "a").write_bytes(b"old")
    (target / "mine").write_bytes(b"kept")
    with pytest.raises(ExportError, match="not empty") as raised:
        await export_version(workspace, "files", target)
    assert raised.value.path == target
    assert tree(target) == {"a": b"old", "mine": b"kept"}
    with pytest.raises(ExportError, match="is a file"):
        await export_version(workspace, "files", target / "mine")
    await export_version(workspace, "files", target, overwrite=True)
    assert tree(target) == {**FILES, "mine": b"kept", MANIFEST_NAME: manifest_of(FILES)}


async def test_a_failed_export_leaves_no_partial_file_and_no_manifest(
    workspace: Workspace, upstream: Upstream, tmp_path: Path
) -> None:
    """When a deferred file fails its digest, it is absent, every file written is whole, no
    temporary file is left, and there is no manifest."""
    await synced(workspace, upstream, DownloadPolicy.ON_DEMAND)
    upstream.server.route("/repo/dir/b", body(b"tampered content"))  # the size of dir/b
    target = tmp_path / "out"
    with pytest.raises(DigestMismatch):
        await export_version(workspace, "files", target)
    written = tree(target)
    assert "dir/b" not in written
    assert MANIFEST_NAME not in written
    assert all(FILES[path] == data for path, data in written.items())  # whole, or absent
    assert not [path for path in target.rglob("*") if path.name.endswith(".tmp")]
    assert (await content_artifacts(workspace))["dir/b"].artifact is None
    assert leftover_temporary_files(workspace) == []


async def test_a_file_where_a_folder_is_needed_is_an_export_error(
    workspace: Workspace, upstream: Upstream, tmp_path: Path
) -> None:
    """A file in the way of a folder is an ExportError naming the path; nothing is left half
    written."""
    await synced(workspace, upstream, DownloadPolicy.IMMEDIATE)
    target = tmp_path / "out"
    target.mkdir()
    (target / "dir").write_bytes(b"in the way")
    # dir/b and dir/sub/c are written at once: whichever fails first is reported.
    with pytest.raises(ExportError, match="cannot create the folder of 'dir/") as raised:
        await export_version(workspace, "files", target, overwrite=True)
    assert raised.value.path in (target / "dir", target / "dir" / "sub")
    written = tree(target)
    assert written.pop("dir") == b"in the way"
    assert written in ({}, {"a": FILES["a"]})  # "a", written at the same time, whole or not


async def test_export_of_an_unknown_repository_or_version(
    workspace: Workspace, upstream: Upstream, tmp_path: Path
) -> None:
    """An unknown repository or version is a ContentNotFound, and no folder is made."""
    await synced(workspace, upstream, DownloadPolicy.IMMEDIATE)
    with pytest.raises(ContentNotFound, match="no repository named 'nope'"):
        await export_version(workspace, "nope", tmp_path / "one")
    with pytest.raises(ContentNotFound, match="no version 7"):
        await export_version(workspace, "files", tmp_path / "two", version=7)
    assert not await anyio.Path(tmp_path / "one").exists()
    assert not await anyio.Path(tmp_path / "two").exists()


async def test_export_fetches_several_files_at_once(
    workspace: Workspace, upstream: Upstream, tmp_path: Path
) -> None:
    """Deferred files are fetched concurrently, up to max_concurrent at once."""
    await synced(workspace, upstream, DownloadPolicy.ON_DEMAND)
    total = upstream.server.state.completed + len(FILES)
    for path, data in FILES.items():
        upstream.server.route(f"/repo/{path}", hold_until_in_flight(data, count=3, total=total))
    result = await export_version(workspace, "files", tmp_path / "out", max_concurrent=3)
    assert result.fetched == 3
    assert upstream.server.state.max_in_flight == 3
    with pytest.raises(InvalidValueError, match="max_concurrent must be an int >= 1, got 0"):
        await export_version(workspace, "files", tmp_path / "other", max_concurrent=0)
