"""The demo's HTTP server: a process of its own, serving a folder until the demo ends."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
from pathlib import Path

import click
import pytest

from stageline.cli import _demo
from stageline.cli._demo import serving

from ._support import COMMAND, COMMAND_TIMEOUT, environment


def _port(url: str) -> int:
    """The port of ``http://127.0.0.1:PORT/`` (the demo's url, or its line's end)."""
    return int(url.rsplit(":", 1)[1].strip().rstrip("/"))


def _get(connection: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


def test_the_server_serves_the_folder_over_one_kept_alive_connection(tmp_path: Path) -> None:
    """Files (nested ones too) are served at their paths, several over one connection, in
    a process other than this one; a missing file is a 404."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_bytes(b"alpha")
    (tmp_path / "sub" / "b.txt").write_bytes(b"beta" * 1000)
    with serving(tmp_path) as url:
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/")
        port = _port(url)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=COMMAND_TIMEOUT)
        try:
            assert _get(connection, "/a.txt") == (200, b"alpha")
            first_socket = connection.sock
            assert _get(connection, "/sub/b.txt") == (200, b"beta" * 1000)
            assert connection.sock is first_socket  # HTTP/1.1: the connection was kept
            assert _get(connection, "/missing")[0] == 404
        finally:
            connection.close()


def test_the_server_process_ends_with_the_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the context ends, normally or by an error, the server process is gone and its
    port refuses connections."""
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        process = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(process)
        return process  # type: ignore[no-any-return]

    monkeypatch.setattr(_demo.subprocess, "Popen", recording_popen)
    for fails in (False, True):
        try:
            with serving(tmp_path) as url:
                port = _port(url)
                if fails:
                    raise KeyError("the demo failed")
        except KeyError:
            assert fails
        process = started[-1]
        assert process.returncode == 0
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=COMMAND_TIMEOUT)
        with pytest.raises(ConnectionRefusedError):
            connection.request("GET", "/")
    assert len(started) == 2


def test_a_server_that_cannot_start_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server script that ends before it listens makes the demo fail naming that, with
    its exit status, not hang or fail on an empty port."""
    real_popen = subprocess.Popen

    def failing_server(command: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        return real_popen(  # type: ignore[call-overload, no-any-return]
            [sys.executable, "-c", "import sys; sys.exit(3)"], **kwargs
        )

    monkeypatch.setattr(_demo.subprocess, "Popen", failing_server)
    with (
        pytest.raises(click.ClickException, match=r"did not start .*wrote b''") as raised,
        serving(Path(".")),
    ):
        pytest.fail("served although the server ended")
    assert raised.value.message.endswith("exit status 3)")


def test_ctrl_c_during_the_demo_stops_its_server_without_a_traceback(tmp_path: Path) -> None:
    """SIGINT to the demo's whole process group (as Ctrl-C in a terminal sends it): the
    demo exits 130, neither process prints a traceback, and the server's port is closed."""
    home = tmp_path / "home"
    home.mkdir()
    process = subprocess.Popen(
        [*COMMAND, "demo", "--files", "5000", "--home", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
        start_new_session=True,  # a process group of its own, as a terminal's job
    )
    try:
        assert process.stdout is not None
        serving_line = process.stdout.readline()
        assert serving_line.startswith("Serving "), serving_line
        port = _port(serving_line)
        assert process.stdout.readline().startswith("Syncing into ")
        assert process.stderr is not None
        # The progress lines (stderr is not a terminal): interrupt once downloads started.
        progress = ""
        while "Downloading Artifacts" not in progress:
            line = process.stderr.readline()
            assert line, f"the demo ended before it downloaded: {progress}"
            progress += line
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=COMMAND_TIMEOUT)
    with pytest.raises(ConnectionRefusedError):
        connection.request("GET", "/")
