"""``run_async``, which every command's work runs through (the garbage collector's set-up),
and Ctrl-C outside it."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from click.testing import CliRunner

from stageline import StagelineError
from stageline.cli import _demo, main
from stageline.cli._common import CommandError
from stageline.cli._running import run_async

BACKENDS = ["asyncio", "trio"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_command_runs_with_the_start_up_heap_frozen(backend: str) -> None:
    """The objects alive when the command starts are frozen while it runs (full
    collections of a long sync do not walk them) and unfrozen when it ends."""
    assert gc.get_freeze_count() == 0
    during: list[int] = []

    async def work() -> str:
        during.append(gc.get_freeze_count())
        return "done"

    assert run_async(work, backend=backend) == "done"
    assert during[0] > 1000
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failed_command_unfreezes_too(backend: str) -> None:
    """A command that fails leaves nothing frozen either."""

    async def work() -> None:
        raise StagelineError("it failed")

    with pytest.raises(CommandError, match="it failed"):
        run_async(work, backend=backend)
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_objects_keeps_them_frozen() -> None:
    """A host that froze objects itself finds them frozen after the command, as before."""
    gc.freeze()
    try:

        async def work() -> None:
            pass

        run_async(work, backend="asyncio")
        # Not unfrozen (that would make it 0); frozen objects freed meanwhile leave it.
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_ctrl_c_outside_a_commands_async_work_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C while a command prepares (here: the demo writing its fixture, before its
    sync runs) exits 130 with one line, as one during the sync does, not click's
    "Aborted!" and 1."""

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_demo, "write_fixture", interrupted)
    home = tmp_path / "home"
    home.mkdir()
    result = CliRunner().invoke(main, ["demo", "--quiet", "--home", str(home)])
    assert result.exit_code == 130, result.output
    assert result.stderr == "stageline: interrupted\n"
    assert "Aborted" not in result.output
