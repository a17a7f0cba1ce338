"""Running a command's async work: the backend, Ctrl-C, errors as one line, logging."""

from __future__ import annotations

import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, TypeVar

import anyio
import click

from .._exceptions import StagelineError
from ._common import CommandError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["INTERRUPTED_EXIT_CODE", "configure_logging", "one_line", "run_async", "stderr_console"]

T = TypeVar("T")

#: The exit code after Ctrl-C (128 + SIGINT), as shells report a process killed by it.
INTERRUPTED_EXIT_CODE: Final = 130


def one_line(error: BaseException) -> str:
    """An error as one line: its message, line breaks folded, its kind when it has none."""
    if isinstance(error, BaseExceptionGroup):
        first = one_line(error.exceptions[0])
        more = len(error.exceptions) - 1
        return f"{first} (and {more} more error{'s' if more > 1 else ''})" if more else first
    text = " ".join(str(error).split())
    return text or type(error).__name__


async def _cancel_on_sigint(scope: anyio.CancelScope, interrupted: list[bool]) -> None:
    with anyio.open_signal_receiver(signal.SIGINT) as signals:
        async for _ in signals:
            # Only the first Ctrl-C cancels; later ones wait for the clean-up it started
            # (removing the unfinished version and the temporary files).
            if not interrupted:
                interrupted.append(True)
                scope.cancel()


def _unwrapped(error: BaseException) -> BaseException:
    """The one exception inside task-group wrappers (groups of a single exception)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    if isinstance(error, BaseExceptionGroup) and error.subgroup(KeyboardInterrupt) is not None:
        return KeyboardInterrupt()
    return error


def run_async(
    work: Callable[[], Awaitable[T]],
    *,
    backend: str,
    interrupted_message: str = "stageline: interrupted; nothing was committed",
) -> T:
    """Run ``work()`` on a new event loop of ``backend``; Ctrl-C cancels it cleanly.

    Ctrl-C (SIGINT) cancels the work like any cancellation, so that what it had begun is
    undone (no version, no temporary files), prints ``interrupted_message`` on standard
    error and exits with code 130. A stageline error, or an OS error, ends the command
    with its message on one line (exit code 1); a ``click.ClickException`` (such as
    :class:`CommandError`) raised by ``work`` ends it as click reports it.

    Raises:
        CommandError: the work failed with a StagelineError or an OSError.
        click.ClickException: what ``work`` raised.
        click.exceptions.Exit: with code 130 after Ctrl-C.
    """
    interrupted: list[bool] = []
    results: list[T] = []

    async def main() -> None:
        async with anyio.create_task_group() as group:
            # Windows has no signal handlers in the event loops: there Ctrl-C arrives as
            # KeyboardInterrupt (below), which unwinds the sync's clean-up too.
            if sys.platform != "win32":
                group.start_soon(_cancel_on_sigint, group.cancel_scope, interrupted)
            results.append(await work())
            group.cancel_scope.cancel()

    # What is alive now (the imported modules: SQLAlchemy, httpx, click, ... some 90 000
    # objects) lives as long as the command: frozen, it is no longer walked by every full
    # garbage collection of a long sync (each one cost ~65 ms on the benchmark machine).
    # Unfrozen afterwards, so that a process running several commands (the tests) keeps
    # collecting it. A process that froze objects itself is left as it is.
    freezing = gc.get_freeze_count() == 0
    if freezing:
        gc.freeze()
    try:
        anyio.run(main, backend=backend)
    except KeyboardInterrupt:  # a Ctrl-C before or after the signal receiver was set
        interrupted.append(True)
    except BaseException as caught:
        error = _unwrapped(caught)
        if isinstance(error, KeyboardInterrupt):
            interrupted.append(True)
        elif isinstance(error, click.ClickException):
            raise error from None
        elif isinstance(error, StagelineError | OSError) or (
            isinstance(error, BaseExceptionGroup)
            and error.split((StagelineError, OSError))[1] is None
        ):
            raise CommandError(one_line(error)) from None
        else:
            raise
    finally:
        if freezing:
            gc.unfreeze()
    if interrupted:
        click.echo(interrupted_message, err=True)
        raise click.exceptions.Exit(INTERRUPTED_EXIT_CODE)
    return results[0]


def stderr_console() -> Console:
    """A rich console on standard error (progress and logs never mix with stdout)."""
    from rich.console import Console

    return Console(stderr=True)


def configure_logging(verbose: int, console: Console | None = None) -> None:
    """Show stageline's log on standard error: INFO with ``-v``, DEBUG with ``-vv``."""
    if not verbose:
        return
    handler: logging.Handler
    if console is not None and console.is_terminal:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_path=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("stageline")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
