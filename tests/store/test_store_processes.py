"""Several OS processes on one database: concurrent insert-or-get, and a killed sync."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from store_support import FileUnit, count_rows, sha

from stageline.models import Remote, Repository
from stageline.storage import ArtifactStorage
from stageline.store import open_store

pytestmark = pytest.mark.anyio

WORKER = Path(__file__).with_name("store_worker.py")
ROUNDS = 40


def start_worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
async def test_two_processes_create_the_same_rows(database_url: str) -> None:
    """Two processes saving overlapping rows at once both succeed, agree on pks, no duplicates."""
    async with open_store(database_url) as store:
        remote = await store.save_remote(Remote(url="http://shared.test/", name="shared"))
    workers = [
        start_worker("overlap", database_url, str(seed), str(ROUNDS), str(remote.pk))
        for seed in (1, 2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        # Both are connected and waiting: release them together so their rounds overlap.
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=100) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    first, second = (json.loads(out.strip().splitlines()[-1]) for out, _err in outputs)
    assert first["artifact"] == second["artifact"]
    assert first["content"] == second["content"]
    assert first["ca"] == second["ca"]
    assert first["ra"] == second["ra"]
    keys = (ROUNDS - 1) * 150 + 200
    assert len(first["content"]) == keys
    assert count_rows(database_url, "artifacts") == keys
    assert count_rows(database_url, "content") == keys
    assert count_rows(database_url, "content_artifacts") == keys
    assert count_rows(database_url, "remote_artifacts") == keys


@pytest.mark.slow
async def test_killed_sync_leaves_nothing_visible(database_url: str, tmp_path: Path) -> None:
    """SIGKILL in the middle of a new version: nothing shows, and the next run cleans up."""
    storage_root = tmp_path / "storage"
    async with open_store(database_url) as store:
        repository = await store.create_repository(Repository(name="victim"))
        old = await store.save_content([FileUnit(path=f"old{n}", digest=sha(n)) for n in range(3)])
        async with store.new_version(repository) as first:
            await first.add_content(old)
    worker = start_worker("hang", database_url, str(storage_root))
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline().strip()
        assert line == "ready", worker.communicate(timeout=30)
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == -signal.SIGKILL
    # What the killed process wrote is in the database, but invisible.
    assert count_rows(database_url, "repository_versions", "complete = false") == 1
    assert count_rows(database_url, "repository_content", "version_added = 2") == 5
    assert count_rows(database_url, "repository_content", "version_removed = 2") == 1
    assert [p.name for p in (storage_root / "tmp").iterdir()] != []

    async with open_store(database_url) as store:
        assert [v.number for v in await store.list_versions(repository)] == [0, 1]
        latest = await store.latest_version(repository)
        seen = set()
        async for chunk in store.iter_content(latest):
            seen.update(unit.pk for unit in chunk)
        assert seen == {unit.pk for unit in old}
        # The next run: a new version cleans up the dead one's rows before numbering.
        new = await store.save_content([FileUnit(path="later", digest=sha(77))])
        async with store.new_version(repository) as retry:
            await retry.add_content(new)
        assert retry.result is not None
        assert retry.result.number == 2
        assert retry.result.content_count == 4
    assert count_rows(database_url, "repository_versions", "complete = false") == 0
    assert count_rows(database_url, "repository_content", "version_removed IS NOT NULL") == 0
    assert count_rows(database_url, "repository_content", "version_added = 2") == 1
    # ... and a new temporary area sweeps the dead one's.
    async with ArtifactStorage(storage_root).temporary_area() as area:
        assert list((storage_root / "tmp").iterdir()) == [area]
