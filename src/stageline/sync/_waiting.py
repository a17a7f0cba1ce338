"""Start a repository's new version, waiting while another sync builds one."""

from __future__ import annotations

import logging
import math
from contextlib import AsyncExitStack

import anyio

from .._exceptions import RepositoryBusyError
from ..models import Repository
from ..store import NewVersion, Store

__all__ = ["enter_new_version"]

logger = logging.getLogger("stageline.sync")

# Seconds between two tries to take the repository's lock: doubling from the first to
# the last, so a short wait ends soon after the other sync and a long one costs little.
_FIRST_RETRY = 0.05
_LAST_RETRY = 2.0


async def enter_new_version(
    stack: AsyncExitStack, store: Store, repository: Repository, *, lock_timeout: float | None
) -> NewVersion:
    """Enter ``store.new_version(repository)`` on ``stack``, waiting for the repository.

    While another sync (of this or another process) builds a version of the repository,
    its lock is tried again with a growing interval, until ``lock_timeout`` seconds passed.

    Args:
        stack: where the entered version's exit is pushed.
        store: the open store.
        repository: a saved repository.
        lock_timeout: seconds to wait at most; None to wait as long as it takes.

    Returns:
        The entered new version.

    Raises:
        RepositoryBusyError: the repository stayed busy for ``lock_timeout`` seconds.
        StoreError: the new version could not be started for another reason.
    """
    deadline = math.inf if lock_timeout is None else anyio.current_time() + lock_timeout
    interval = _FIRST_RETRY
    while True:
        try:
            return await stack.enter_async_context(store.new_version(repository))
        except RepositoryBusyError as exc:
            left = deadline - anyio.current_time()
            if left <= 0:
                raise RepositoryBusyError(
                    f"repository {repository.name!r} was still being synced by another sync "
                    f"after waiting {lock_timeout} s; try again later, or raise lock_timeout"
                ) from exc
            if interval == _FIRST_RETRY:
                logger.info(
                    "repository %r is being synced by another sync; waiting for it to finish",
                    repository.name,
                )
        await anyio.sleep(min(interval, left))
        interval = min(2 * interval, _LAST_RETRY)
