"""``stageline sync`` end to end: a subprocess against a real local server."""

from __future__ import annotations

import hashlib
import signal
import subprocess
from pathlib import Path

import anyio
import pytest

from stageline import Workspace
from stageline.plugins.file import write_fixture

from ..download._servers import (
    LocalServer,
    body,
    refusing_port,
    require_basic_auth,
    stall,
    status,
)
from ..plugins._support import leftover_temporary_files, serve_directory, write_repository
from ._support import COMMAND, COMMAND_TIMEOUT, environment, one_line_error, stageline, sync_json

FILES = {"a.txt": b"alpha", "dir/b.txt": b"bravo", "dir/c.txt": b"charlie"}


@pytest.fixture
def url(server: LocalServer, tmp_path: Path) -> str:
    """A served repository of three files."""
    write_repository(tmp_path / "repo", FILES)
    return serve_directory(server, tmp_path / "repo")


def latest_version(home: Path, repository: str = "files") -> int:
    """The repository's latest version number, read with the library."""

    async def read() -> int:
        async with Workspace(home).open_store() as store:
            found = await store.get_repository(repository)
            return (await store.latest_version(found)).number

    return anyio.run(read)


def test_sync_then_resync_prints_a_summary_and_skips(url: str, home: Path) -> None:
    """A sync prints its new version; a re-sync says it is unchanged; both exit 0."""
    first = stageline("sync", url, "--repository", "files", home=home)
    assert first.returncode == 0, first.stderr
    assert "files: version 1 (+3 -0), 3 units; 3 entries in 1 manifest" in first.stdout
    # Not a terminal: progress comes as plain lines, on standard error.
    assert "Downloading Artifacts [sync.downloading.artifacts] completed: 3" in first.stderr
    again = stageline("sync", url, "-r", "files", "--backend", "trio", home=home)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("files: unchanged, the manifest and options are those")
    assert latest_version(home) == 1


def test_json_summary_force_and_verbose_reasons(url: str, home: Path) -> None:
    """--json prints the summary; --force -v syncs in full and logs why."""
    first = sync_json(url, home, "--quiet")
    assert (first["version"], first["units"], first["downloaded_files"]) == (1, 3, 3)
    assert first["downloaded_bytes"] == sum(map(len, FILES.values()))
    assert sync_json(url, home)["unchanged"] is True
    forced = stageline("sync", url, "-r", "files", "--force", "-v", "--json", home=home)
    assert forced.returncode == 0, forced.stderr
    assert "files: syncing" in forced.stderr
    assert "forced" in forced.stderr
    assert '"reasons": [\n    "forced"\n  ]' in forced.stdout


def test_mirror_removes_what_the_manifest_dropped(
    server: LocalServer, url: str, home: Path, tmp_path: Path
) -> None:
    """--mirror makes the version hold exactly the listed files; -v says the manifest changed."""
    sync_json(url, home)
    write_repository(tmp_path / "repo", {"a.txt": FILES["a.txt"]})
    serve_directory(server, tmp_path / "repo")
    done = stageline("sync", url, "-r", "files", "--mirror", "-v", home=home)
    assert done.returncode == 0, done.stderr
    assert "files: version 2 (+0 -2), 1 unit;" in done.stdout
    assert "synced because the manifest changed" in done.stdout
    assert "mirror changed (False → True)" in done.stdout


def test_skip_policy_reports_the_skipped_file_and_its_cap_fails(
    server: LocalServer, url: str, home: Path
) -> None:
    """--on-error skip leaves a 404 out and exits 0; --max-skipped 0 makes it fail."""
    server.route("/repo/a.txt", status(404))
    capped = stageline(
        "sync", url, "-r", "files", "--on-error", "skip", "--max-skipped", "0", home=home
    )
    assert "404" in one_line_error(capped)
    summary = sync_json(url, home, "--on-error", "skip", "--max-retries", "0")
    assert [s["relative_path"] for s in summary["skipped_units"]] == ["a.txt"]
    assert "404" in summary["skipped_units"][0]["error"]
    assert summary["content_count"] == 2


def test_an_unreachable_url_fails_in_one_line(home: Path) -> None:
    """Nothing listening: exit 1 with a one-line error naming the url."""
    with refusing_port() as port:
        url = f"http://127.0.0.1:{port}/repo/PULP_MANIFEST"
        done = stageline("sync", url, "-r", "files", "--max-retries", "0", home=home)
    assert url in one_line_error(done)


def test_a_malformed_manifest_fails_naming_its_line(
    server: LocalServer, home: Path, tmp_path: Path
) -> None:
    """A bad manifest line: exit 1, the error names the url and the line number."""
    write_repository(tmp_path / "bad", {"a.txt": b"a"}, "b.txt,xyz,1\n")
    url = serve_directory(server, tmp_path / "bad")
    error = one_line_error(stageline("sync", url, "-r", "files", home=home))
    assert f"manifest {url} line 2: 'xyz' is not a sha256" in error
    assert latest_version(home) == 0


def test_a_digest_mismatch_fails_and_keeps_nothing(
    server: LocalServer, url: str, home: Path
) -> None:
    """A file whose bytes differ from the manifest's sha256: exit 1, no version."""
    server.route("/repo/dir/b.txt", body(b"BRAVO"))
    error = one_line_error(stageline("sync", url, "-r", "files", "--max-retries", "0", home=home))
    assert "dir/b.txt" in error
    assert hashlib.sha256(b"bravo").hexdigest() in error
    assert latest_version(home) == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [("--policy", "later"), ("--on-error", "ignore"), ("--backend", "curio"), ("--header", "x")],
)
def test_unknown_option_values_are_usage_errors(
    url: str, home: Path, option: str, value: str
) -> None:
    """A value outside an option's choices: exit 2 and the option named, no traceback."""
    done = stageline("sync", url, "-r", "files", option, value, home=home)
    assert done.returncode == 2
    assert f"Invalid value for '{option}'" in done.stderr
    assert "Traceback" not in done.stderr


def test_credentials_and_headers_reach_the_server_and_stay_secret(
    server: LocalServer, tmp_path: Path, home: Path
) -> None:
    """--username, $STAGELINE_PASSWORD and --header are sent; the password is never printed."""
    write_repository(tmp_path / "repo", {"a.txt": b"a"})
    url = serve_directory(server, tmp_path / "repo")
    data = (tmp_path / "repo" / "PULP_MANIFEST").read_bytes()
    server.route("/repo/PULP_MANIFEST", require_basic_auth("alice", "s3cret-pw", body(data)))
    refused = stageline("sync", url, "-r", "files", "--max-retries", "0", home=home)
    assert "401" in one_line_error(refused)
    done = stageline(
        "sync", url, "-r", "files", "--username", "alice", "--header", "X-Trace: t1", "-vv",
        home=home,
        env=environment(STAGELINE_PASSWORD="s3cret-pw"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "s3cret-pw" not in done.stdout + done.stderr
    assert {r.headers.get("X-Trace") for r in server.requests[1:]} == {"t1"}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_ctrl_c_during_a_sync_exits_130_and_keeps_nothing(
    server: LocalServer, url: str, home: Path, backend: str
) -> None:
    """SIGINT while a file downloads: exit 130, no version, no temporary files."""
    server.route("/repo/dir/c.txt", stall(b"charlie", send=2))
    process = subprocess.Popen(
        [*COMMAND, "sync", url, "-r", "files", "--home", str(home), "--backend", backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    try:
        assert server.state.body_started.wait(COMMAND_TIMEOUT), "the download never started"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert "interrupted; nothing was committed" in stderr
    assert "Traceback" not in stderr
    assert latest_version(home) == 0
    assert leftover_temporary_files(Workspace(home)) == []


def test_fixture_writes_a_repository_that_syncs(tmp_path: Path, home: Path) -> None:
    """stageline fixture writes files and manifests; syncing its file:// url gets them all."""
    fixture = ["fixture", str(tmp_path / "fx"), "--files", "12", "--size", "100", "--nested", "2"]
    done = stageline(*fixture, home=None)
    assert done.returncode == 0, done.stderr
    assert "Wrote 12 files (1.2 KiB) and 3 manifests" in done.stdout
    expected = write_fixture(tmp_path / "again", 12, 100, 2)
    assert (tmp_path / "fx" / "PULP_MANIFEST").read_bytes() == expected.manifest.read_bytes()
    summary = sync_json((tmp_path / "fx").as_uri() + "/", home)
    assert (summary["content_count"], summary["manifests"]) == (14, 3)


def test_demo_runs_to_a_summary(tmp_path: Path) -> None:
    """stageline demo serves, syncs, re-syncs (skipped) and prints its summary; exit 0."""
    home = tmp_path / "demo-home"
    home.mkdir()
    done = stageline("demo", "--files", "40", home=home)
    assert done.returncode == 0, done.stderr
    assert "First sync: version 1: 42 units, 42 files downloaded" in done.stdout
    assert "Re-sync: skipped, the manifest is unchanged" in done.stdout
    assert "Repository 'demo' has 2 versions" in done.stdout


def test_demo_creates_the_home_that_stageline_home_names(tmp_path: Path) -> None:
    """With STAGELINE_HOME naming a folder not made yet (and no --home), the demo creates it
    and syncs into it, as the README's first command does with the default home (on trio:
    the other demo test runs on asyncio)."""
    home = tmp_path / "not-yet" / "home"
    done = stageline(
        "demo", "--files", "20", "--backend", "trio",
        home=None, env=environment(STAGELINE_HOME=str(home)),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"Syncing into {home} (repository 'demo', trio)" in done.stdout
    assert (home / "stageline.db").is_file()
    assert "Repository 'demo' has 2 versions" in done.stdout
