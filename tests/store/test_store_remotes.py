"""Remotes: a unique, non-empty name; saving one again updates its row instead of adding one."""

from __future__ import annotations

import contextlib
import threading

import anyio
import pytest
import sqlalchemy as sa
from store_support import count_rows

from stageline import StoreArgumentError, StoreError
from stageline.models import Remote
from stageline.store import Store, open_store

pytestmark = pytest.mark.anyio


async def test_saving_a_remote_of_a_saved_name_updates_it(store: Store, database_url: str) -> None:
    """A new Remote object with a saved name (a later run) gets that row, updated."""
    first = await store.save_remote(Remote(url="http://old.test/", name="upstream", max_retries=1))
    again = Remote(url="http://new.test/", name="upstream", max_retries=5)
    assert await store.save_remote(again) is again
    assert again.pk == first.pk
    other = await store.save_remote(Remote(url="http://new.test/", name="mirror"))
    assert other.pk != first.pk
    assert await anyio.to_thread.run_sync(count_rows, database_url, "remotes") == 2
    async with open_store(database_url) as fresh:
        loaded = await fresh.get_remote(first.pk or 0)
    assert (loaded.name, loaded.url, loaded.max_retries) == ("upstream", "http://new.test/", 5)


@pytest.mark.parametrize("name", ["", "  "])
async def test_a_remote_without_a_name_is_refused(store: Store, name: str) -> None:
    """An empty (or blank) name is a StoreArgumentError naming the url, its password hidden."""
    remote = Remote(url="http://user:hunter2@up.test/repo/", name=name)
    with pytest.raises(StoreArgumentError, match=r"http://user:\[secure\]@up\.test/repo/") as info:
        await store.save_remote(remote)
    assert isinstance(info.value, ValueError)
    assert "hunter2" not in str(info.value)
    assert remote.pk is None


async def test_renaming_to_a_taken_name_is_refused(store: Store) -> None:
    """A saved remote renamed to another remote's name is refused; names stay unique."""
    one = await store.save_remote(Remote(url="http://one.test/", name="one"))
    two = await store.save_remote(Remote(url="http://two.test/", name="two"))
    two.name = "one"
    with pytest.raises(StoreArgumentError, match=rf"'one' is the name of remote {one.pk}"):
        await store.save_remote(two)
    two.name = "second"
    await store.save_remote(two)
    assert (await store.get_remote(two.pk or 0)).name == "second"


async def test_an_unknown_pk_is_still_refused(store: Store) -> None:
    """A remote whose pk names no row is refused, as before."""
    with pytest.raises(StoreError, match="does not exist"):
        await store.save_remote(Remote(url="http://x.test/", name="x", pk=12345))


async def test_concurrent_savers_of_one_name_make_one_row(database_url: str) -> None:
    """Two stores saving a new remote of the same name at once end with one row and one pk."""
    both_looked = threading.Barrier(2, timeout=2)

    def before_insert(conn: object, cursor: object, statement: str, *args: object) -> None:
        # Hold each saver just before it inserts until the other one has looked the name
        # up too (or, when the savers are serialized, for two seconds).
        if statement.startswith("INSERT INTO remotes"):
            with contextlib.suppress(threading.BrokenBarrierError):
                both_looked.wait()

    saved: list[Remote] = []

    async def save(store: Store, url: str) -> None:
        saved.append(await store.save_remote(Remote(url=url, name="shared")))

    async with open_store(database_url) as one, open_store(database_url) as two:
        for store in (one, two):
            sa.event.listen(store._engine, "before_cursor_execute", before_insert)
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(save, one, "http://one.test/")
                tg.start_soon(save, two, "http://two.test/")
    assert await anyio.to_thread.run_sync(count_rows, database_url, "remotes") == 1
    assert saved[0].pk == saved[1].pk


async def test_a_nameless_remote_is_refused_without_showing_its_secrets(store: Store) -> None:
    """The message names the url as every other message does (redact_url): neither a
    lone-username token nor a signature in the query shows."""
    remote = Remote(url="https://tokensecret@up.test/repo/?sig=sigsecret&v=1", name=" ")
    with pytest.raises(StoreArgumentError, match="has no name") as info:
        await store.save_remote(remote)
    message = str(info.value)
    assert "tokensecret" not in message
    assert "sigsecret" not in message
    assert "https://[secure]@up.test/repo/?sig=[secure]&v=1" in message
