"""The file plugin against a real local HTTP server: sync, skip, force, mirror, on demand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from stageline import DeclarativeVersion, Workspace
from stageline.models import Repository
from stageline.plugins.file import sync_files, write_fixture

from ..download._servers import LocalServer, status
from ..sync._plugin import ManifestFirstStage, Upstream
from ._support import (
    content_artifacts,
    files_in,
    leftover_temporary_files,
    line,
    requested,
    serve_directory,
    write_repository,
)

pytestmark = pytest.mark.anyio

FILES = {"a.txt": b"alpha", "dir/b.txt": b"bravo", "dir/sub dir/c,1.txt": b"charlie"}


def publish(server: LocalServer, directory: Path, files: dict[str, bytes] = FILES) -> str:
    """Write ``files`` and their manifest into ``directory`` and serve it."""
    write_repository(directory, files)
    return serve_directory(server, directory)


async def test_a_first_sync_downloads_every_file_into_a_version(
    workspace: Workspace, server: LocalServer, tmp_path: Path
) -> None:
    """The first sync makes version 1 with every listed file, each downloaded and stored."""
    url = publish(server, tmp_path / "repo")
    with anyio.fail_after(30):
        result = await sync_files(url, "files", workspace=workspace)
    assert not result.unchanged
    assert result.version is not None
    assert (result.version.number, result.version.content_count) == (1, 3)
    assert (result.units, result.downloaded_files, result.manifests) == (3, 3, 1)
    assert result.downloaded_bytes == result.declared_bytes == sum(map(len, FILES.values()))
    assert sorted(await files_in(workspace, "files")) == sorted(FILES)
    for path, ca in (await content_artifacts(workspace, "files")).items():
        assert ca.artifact is not None
        assert await workspace.storage.read_bytes(ca.artifact) == FILES[path]
    # Paths with spaces and commas are quoted in urls and kept whole in relative paths.
    assert sorted(requested(server)) == sorted(["PULP_MANIFEST", *FILES])
    assert leftover_temporary_files(workspace) == []


async def test_a_resync_of_an_unchanged_manifest_skips_the_pipeline(
    workspace: Workspace, server: LocalServer, tmp_path: Path
) -> None:
    """With the manifest and options unchanged, a re-sync reads only the manifest."""
    url = publish(server, tmp_path / "repo")
    with anyio.fail_after(30):
        first = await sync_files(url, "files", workspace=workspace)
        before = len(server.requests)
        again = await sync_files(url, "files", workspace=workspace)
    assert again.unchanged
    assert (again.version, again.reasons, again.units) == (None, (), 0)
    assert again.latest_version.number == first.latest_version.number == 1
    assert again.manifest_sha256 == first.manifest_sha256
    assert requested(server)[before:] == ["PULP_MANIFEST"]


async def test_force_runs_the_whole_pipeline_and_changes_nothing(
    workspace: Workspace, server: LocalServer, tmp_path: Path
) -> None:
    """force=True syncs in full (every entry declared) but downloads nothing held."""
    url = publish(server, tmp_path / "repo")
    with anyio.fail_after(30):
        await sync_files(url, "files", workspace=workspace)
        before = len(server.requests)
        forced = await sync_files(url, "files", workspace=workspace, force=True)
    assert not forced.unchanged
    assert forced.reasons == ("forced",)
    assert (forced.version, forced.units, forced.downloaded_files) == (None, 3, 0)
    assert forced.latest_version.number == 1
    assert requested(server)[before:] == ["PULP_MANIFEST"]


async def test_a_changed_manifest_or_option_is_synced_and_said_why(
    workspace: Workspace, server: LocalServer, tmp_path: Path
) -> None:
    """A new manifest, or another policy or mode, runs the pipeline; reasons name each change."""
    url = publish(server, tmp_path / "repo")
    with anyio.fail_after(30):
        await sync_files(url, "files", workspace=workspace)
        publish(server, tmp_path / "repo", {**FILES, "a.txt": b"alpha, edited"})
        changed = await sync_files(url, "files", workspace=workspace)
        assert changed.version is not None
        assert (changed.version.added_count, changed.version.removed_count) == (1, 1)
        assert [r.split(" (")[0] for r in changed.reasons] == ["the manifest changed"]
        assert changed.downloaded_files == 1
        options = await sync_files(
            url, "files", workspace=workspace, policy="on_demand", mirror=True
        )
    assert options.reasons == (
        "policy changed ('immediate' → 'on_demand')",
        "mirror changed (False → True)",
    )
    assert options.version is None


async def test_a_resync_after_another_version_is_not_skipped(
    workspace: Workspace, server: LocalServer, tmp_path: Path
) -> None:
    """A version made since the last sync (from another manifest) makes the next sync run."""
    url = publish(server, tmp_path / "repo")
    other = tmp_path / "other"
    write_repository(other, {"x.txt": b"x-ray"})
    other_url = serve_directory(server, other, prefix="/other/")
    with anyio.fail_after(30):
        await sync_files(url, "files", workspace=workspace)
        await sync_files(other_url, "files", workspace=workspace)
        # The record now says "other"; syncing the first url again is a url change.
        back = await sync_files(url, "files", workspace=workspace)
    assert not back.unchanged
    assert back.reasons[0].startswith("the manifest changed")
    assert any(reason.startswith("url changed") for reason in back.reasons)


async def test_a_version_made_by_another_sync_since_makes_the_next_one_run(
    workspace: Workspace, server: LocalServer, tmp_path: Path
) -> None:
    """Another plugin's version of the repository since the last sync: not skipped, and said."""
    url = publish(server, tmp_path / "repo")
    other = Upstream(server, prefix="/other/")
    other.add("x.txt", b"x-ray")
    with anyio.fail_after(30):
        await sync_files(url, "files", workspace=workspace)
        await DeclarativeVersion(
            ManifestFirstStage(other.remote()), Repository(name="files"), workspace=workspace
        ).acreate()
        again = await sync_files(url, "files", workspace=workspace)
    assert again.reasons == (
        "the repository changed since (the last sync left version 1, the latest is 2)",
    )
    assert again.version is None
    assert (await sync_files(url, "files", workspace=workspace)).unchanged


async def test_mirror_keeps_exactly_the_listed_files_and_additive_keeps_the_rest(
    workspace: Workspace, server: LocalServer, tmp_path: Path
) -> None:
    """A file dropped upstream stays in an additive sync and goes in a mirror sync."""
    url = publish(server, tmp_path / "repo")
    smaller = {path: data for path, data in FILES.items() if path != "a.txt"}
    with anyio.fail_after(30):
        await sync_files(url, "files", workspace=workspace)
        publish(server, tmp_path / "repo", smaller)
        additive = await sync_files(url, "files", workspace=workspace)
        assert additive.version is None
        assert sorted(await files_in(workspace, "files")) == sorted(FILES)
        mirrored = await sync_files(url, "files", workspace=workspace, mirror=True)
    assert mirrored.version is not None
    assert (mirrored.version.removed_count, mirrored.version.content_count) == (1, 2)
    assert sorted(await files_in(workspace, "files")) == sorted(smaller)


@pytest.mark.parametrize("policy", ["on_demand", "streamed"])
async def test_on_demand_downloads_only_the_manifests(
    workspace: Workspace, server: LocalServer, tmp_path: Path, policy: str
) -> None:
    """On demand (or streamed), files are saved deferred; sub-repository manifests are
    still downloaded."""
    fixture = write_fixture(tmp_path / "repo", files=6, size=10, nested=1)
    url = serve_directory(server, fixture.directory)
    with anyio.fail_after(30):
        result = await sync_files(url, "files", workspace=workspace, policy=policy)
    assert result.version is not None
    assert result.version.content_count == 7  # six files and the nested manifest
    assert sorted(requested(server)) == ["PULP_MANIFEST", "nested/PULP_MANIFEST"]
    held = {
        path: ca.artifact is not None
        for path, ca in (await content_artifacts(workspace, "files")).items()
    }
    assert held.pop("nested/PULP_MANIFEST") is True
    assert set(held.values()) == {False}


async def test_nested_manifests_three_deep_are_synced_relative_to_their_folders(
    workspace: Workspace, server: LocalServer, tmp_path: Path
) -> None:
    """Sub-repositories three levels deep: every file at its path from the root."""
    fixture = write_fixture(tmp_path / "repo", files=8, size=16, nested=3)
    url = serve_directory(server, fixture.directory)
    with anyio.fail_after(30):
        result = await sync_files(url, "files", workspace=workspace)
    assert result.manifests == 4
    paths = await files_in(workspace, "files")
    expected = {
        str(path.relative_to(fixture.directory).as_posix())
        for path in fixture.directory.rglob("*")
        if path.is_file() and path != fixture.manifest
    }
    assert set(paths) == expected
    assert "nested/nested/nested/PULP_MANIFEST" in paths
    assert sum(path.endswith(".bin") for path in paths) == 8
    assert result.downloaded_bytes == result.declared_bytes


async def test_a_skip_policy_leaves_a_missing_file_out_and_the_next_sync_runs(
    workspace: Workspace, server: LocalServer, tmp_path: Path
) -> None:
    """A 404 under on_error="skip" is reported; the next sync is not skipped."""
    url = publish(server, tmp_path / "repo")
    server.route("/repo/a.txt", status(404))
    with anyio.fail_after(30):
        result = await sync_files(url, "files", workspace=workspace, on_error="skip")
        assert [skipped.content.relative_path for skipped in result.skipped_units] == ["a.txt"]  # type: ignore[attr-defined]
        assert result.version is not None
        assert result.version.content_count == 2
        again = await sync_files(url, "files", workspace=workspace, on_error="skip")
    assert again.reasons == ("the last sync left 1 units out",)


async def test_a_sub_repository_that_fails_is_left_out_under_skip(
    workspace: Workspace, server: LocalServer, tmp_path: Path
) -> None:
    """A sub-repository manifest that cannot be fetched is skipped with its subtree."""
    fixture = write_fixture(tmp_path / "repo", files=4, size=8, nested=2)
    url = serve_directory(server, fixture.directory)
    server.route("/repo/nested/PULP_MANIFEST", status(500))
    with anyio.fail_after(30):
        result = await sync_files(
            url, "files", workspace=workspace, on_error="skip", remote_settings={"max_retries": 0}
        )
    assert [s.content.relative_path for s in result.skipped_units] == ["nested/PULP_MANIFEST"]  # type: ignore[attr-defined]
    assert all(not path.startswith("nested/") for path in await files_in(workspace, "files"))


async def test_a_file_url_repository_syncs_like_an_http_one(
    workspace: Workspace, tmp_path: Path
) -> None:
    """A file:// folder url (ending in /) reads its PULP_MANIFEST and files from disk."""
    fixture = write_fixture(tmp_path / "repo", files=3, size=5, nested=1)
    with anyio.fail_after(30):
        result = await sync_files(fixture.directory.as_uri() + "/", "local", workspace=workspace)
    assert result.version is not None
    assert result.version.content_count == 4


async def test_the_unchanged_skip_works_on_postgresql(
    any_workspace: Workspace, server: LocalServer, tmp_path: Path
) -> None:
    """The plugin's record table is made and read on PostgreSQL (and SQLite) alike."""
    url = publish(server, tmp_path / "repo")
    with anyio.fail_after(30):
        first = await sync_files(url, "files", workspace=any_workspace)
        again = await sync_files(url, "files", workspace=any_workspace)
    assert first.version is not None
    assert again.unchanged


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"policy": "later"}, "policy must be one of 'immediate', 'on_demand', 'streamed'"),
        ({"remote_settings": {"colour": "red"}}, "remote_settings has 'colour'"),
        ({"remote_settings": {"name": "other"}}, "remote_settings has 'name'"),
        ({"remote_settings": {"max_retries": -1}}, "max_retries must be an int >= 0"),
        ({"on_error": "ignore"}, "on_error"),
    ],
)
async def test_bad_arguments_fail_before_anything_is_fetched(
    workspace: Workspace, server: LocalServer, arguments: dict[str, Any], message: str
) -> None:
    """A refused argument is a ValueError naming it, raised before any request."""
    with pytest.raises(ValueError, match=message):
        await sync_files(server.url("/repo/"), "files", workspace=workspace, **arguments)
    assert server.requests == []


async def test_a_sub_repository_listed_twice_is_read_once(
    workspace: Workspace, server: LocalServer, tmp_path: Path
) -> None:
    """Repeated sub-repository entries cannot multiply the walk: each manifest is read once."""
    root = tmp_path / "repo"
    deep = write_repository(root / "a" / "b", {"f.txt": b"deep"})
    middle = write_repository(
        root / "a", {"g.txt": b"middle"}, *[line("b/PULP_MANIFEST", deep)] * 3
    )
    write_repository(root, {}, *[line("a/PULP_MANIFEST", middle)] * 3)
    url = serve_directory(server, root)
    with anyio.fail_after(30):
        result = await sync_files(url, "files", workspace=workspace)
    assert result.manifests == 3
    assert sorted(await files_in(workspace, "files")) == [
        "a/PULP_MANIFEST",
        "a/b/PULP_MANIFEST",
        "a/b/f.txt",
        "a/g.txt",
    ]
