"""Retries are logged on ``stageline.download``, never as bare stamina lines on stderr."""

from __future__ import annotations

import logging
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import stamina

import stageline
from stageline.download import DownloaderFactory
from stageline.models import Remote

from ._servers import LocalServer, body, status

pytestmark = pytest.mark.anyio

DATA = b"retried " * 1000

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import anyio

    from stageline.download import DownloaderFactory, RetrySettings
    from stageline.models import Remote
    from stageline.storage import use_temp_dir

    if sys.argv[3] == "configured":
        import logging

        logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")

    async def main(url: str, directory: str) -> None:
        with use_temp_dir(Path(directory)):
            retry = RetrySettings(wait_initial=0, wait_jitter=0)
            async with DownloaderFactory(retry=retry) as factory:
                result = await factory.get_downloader(Remote(url=url), url=url).run()
        print(result.attempts)

    anyio.run(main, sys.argv[1], sys.argv[2], backend=sys.argv[4])
    """
)


@pytest.fixture
def default_stamina_hooks() -> Iterator[None]:
    """stamina's hooks as a fresh program has them, and again after the test."""
    stamina.instrumentation.set_on_retry_hooks(None)
    yield
    stamina.instrumentation.set_on_retry_hooks(None)


async def _run_script(
    anyio_backend: str, server: LocalServer, tmp_path: Path, logging_setup: str
) -> tuple[str, str]:
    import anyio

    url = server.route("/flaky", status(503), body(DATA))
    script = tmp_path / "sync.py"
    script.write_text(SCRIPT)
    source = Path(stageline.__file__).parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(source), os.environ.get("PYTHONPATH", "")]),
    }
    with anyio.fail_after(60):
        process = await anyio.run_process(
            [sys.executable, str(script), url, str(tmp_path), logging_setup, anyio_backend],
            env=env,
            check=False,
        )
    stdout, stderr = process.stdout.decode(), process.stderr.decode()
    assert process.returncode == 0, stderr
    assert stdout.strip() == "2"
    return url, stderr


async def test_a_program_without_logging_gets_no_retry_lines_on_stderr(
    anyio_backend: str, server: LocalServer, tmp_path: Path
) -> None:
    """A retried download in a program that configured no logging prints nothing.

    stamina's default hook logged "stamina.retry_scheduled" (its message, nothing else)
    at WARNING on the unconfigured "stamina" logger, which Python prints to stderr.
    """
    _, stderr = await _run_script(anyio_backend, server, tmp_path, "unconfigured")
    assert stderr == ""


async def test_a_program_with_logging_gets_stagelines_retry_line(
    anyio_backend: str, server: LocalServer, tmp_path: Path
) -> None:
    """With logging configured, the retry is one stageline.download line with the url,
    the try and the wait, and stamina's bare line is gone."""
    url, stderr = await _run_script(anyio_backend, server, tmp_path, "configured")
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("stageline.download WARNING ")
    for part in (url, "try 1 failed", "HTTP 503", "retrying in 0.00 s"):
        assert part in lines[0]
    assert "stamina" not in stderr


async def test_retries_are_logged_with_url_try_and_wait(
    server: LocalServer,
    temp_dir: Path,
    caplog: pytest.LogCaptureFixture,
    default_stamina_hooks: None,
) -> None:
    """Each scheduled retry is a WARNING record on stageline.download with the url (its
    password masked), the number of the failed try and the wait, as record attributes."""
    server.route("/flaky", status(500), status(502), body(DATA))
    url = f"http://alice:urlsecret@127.0.0.1:{server.port}/flaky"
    with caplog.at_level(logging.INFO):
        async with DownloaderFactory() as factory:
            result = await factory.get_downloader(Remote(url=url), url=url).run()
    records = [r for r in caplog.records if r.name == "stageline.download"]
    assert result.attempts == 3
    assert [(r.levelno, r.try_number, r.wait_seconds) for r in records] == [  # type: ignore[attr-defined]
        (logging.WARNING, 1, 0.0),
        (logging.WARNING, 2, 0.0),
    ]
    shown = f"http://alice:[secure]@127.0.0.1:{server.port}/flaky"
    for record in records:
        assert record.url == shown  # type: ignore[attr-defined]
        assert shown in record.getMessage()
        assert "urlsecret" not in record.getMessage()
    assert [r for r in caplog.records if r.name.startswith("stamina")] == []


async def test_a_users_own_stamina_hooks_still_see_download_retries(
    server: LocalServer,
    temp_dir: Path,
    caplog: pytest.LogCaptureFixture,
    default_stamina_hooks: None,
) -> None:
    """Hooks a program set stay in place and are called; stageline's logging joins them."""
    seen: list[int] = []
    stamina.instrumentation.set_on_retry_hooks([lambda details: seen.append(details.retry_num)])
    url = server.route("/flaky", status(503), body(DATA))
    with caplog.at_level(logging.WARNING):
        async with DownloaderFactory() as factory:
            await factory.get_downloader(Remote(url=url), url=url).run()
    assert seen == [1]
    assert [r.name for r in caplog.records] == ["stageline.download"]
