"""A process killed while it deletes a temporary area leaves nothing the next sweep keeps."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from stageline.storage import ArtifactStorage

pytestmark = pytest.mark.anyio

FILES = 1000

# Runs a deletion of a temporary area with FILES files, and SIGKILLs itself at POINT:
#   first-unlink  just before the first file of the area is deleted
#   lock-gone     right after the area's lock file is deleted
#   half          right after half of the area's files are deleted
#   last-rmdir    just before the emptied area's directory is removed
# ROLE "owner": the area is the process's own, deleted as its temporary_area() block ends.
# ROLE "sweeper": the area was abandoned by a dead process; this one's sweep deletes it.
_KILLED_WHILE_DELETING = """
import os, signal, sys
import anyio
from stageline.storage import ArtifactStorage

root, role, point, files, backend = sys.argv[1:]
files = int(files)
storage = ArtifactStorage(root)
armed = False
unlinked = 0
real_unlink, real_rmdir = os.unlink, os.rmdir

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def unlink(path, *args, **kwargs):
    global unlinked
    if armed and point == "first-unlink":
        die()
    real_unlink(path, *args, **kwargs)
    if armed:
        unlinked += 1
        if point == "lock-gone" and os.fsdecode(path).endswith(".in-use"):
            die()
        if point == "half" and unlinked == files // 2:
            die()

def rmdir(path, *args, **kwargs):
    if armed and point == "last-rmdir":
        die()
    real_rmdir(path, *args, **kwargs)

os.unlink, os.rmdir = unlink, rmdir

async def main():
    global armed
    if role == "owner":
        async with storage.temporary_area() as area:
            for number in range(files - 1):  # and the lock file
                (area / str(number)).write_bytes(b"x")
            armed = True
    else:
        armed = True
        async with storage.temporary_area():
            pass

anyio.run(main, backend=backend)
print("not killed")
"""


def abandoned_area(storage: ArtifactStorage) -> Path:
    """An area left by a dead process: its lock file is there and free, FILES files in all."""
    area = storage.temp_root / "1-abandoned"
    area.mkdir(parents=True)
    fd = os.open(area / ".in-use", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.close(fd)  # the lock goes with the process that held it
    for number in range(FILES - 1):
        (area / str(number)).write_bytes(b"x")
    return area


@pytest.mark.parametrize("point", ["first-unlink", "lock-gone", "half", "last-rmdir"])
@pytest.mark.parametrize("role", ["owner", "sweeper"])
async def test_the_next_sweep_removes_what_a_killed_deletion_left(
    tmp_path: Path, anyio_backend: str, role: str, point: str
) -> None:
    """Killed anywhere in deleting an area (its own, or an abandoned one), nothing is kept."""
    storage = ArtifactStorage(tmp_path / "storage")
    if role == "sweeper":
        abandoned_area(storage)
    with anyio.fail_after(60):
        child = await anyio.run_process(
            [
                sys.executable,
                "-c",
                _KILLED_WHILE_DELETING,
                str(storage.root),
                role,
                point,
                str(FILES),
                anyio_backend,
            ],
            check=False,
            stderr=subprocess.STDOUT,
        )
    assert child.returncode == -signal.SIGKILL, child.stdout.decode()
    assert list(storage.temp_root.iterdir()), "killed after the deletion: this proves nothing"

    async with storage.temporary_area() as area:
        assert list(storage.temp_root.iterdir()) == [area]
        assert [p for p in storage.temp_root.rglob("*") if p.is_file()] == [area / ".in-use"]
