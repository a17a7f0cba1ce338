"""A Hypothesis state machine: repository versions against a plain Python model.

Rules build versions from random adds, removes, marks as seen and removals of the unseen
(a mirror) of units that share
repository keys, and let some versions fail or be cancelled; after every step the store's
versions must equal the model's, version by version: what each holds, adds and removes,
as ``iter_content`` streams them (and a new version's own ``iter_content`` after each of
its changes).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.from_thread
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy.pool import NullPool
from store_support import FileUnit, PackageUnit, postgresql_base_url, sha

from stageline import StoreArgumentError
from stageline.models import Content, Repository
from stageline.store import NewVersion, Store, open_store

# Eight files on four paths (so repository keys collide) and three packages (no repo key).
UNITS: list[Content] = [
    *[FileUnit(path=f"p{n % 4}", digest=sha(n)) for n in range(8)],
    *[PackageUnit(name="pkg", version=str(n)) for n in range(3)],
]

unit_lists = st.lists(st.integers(0, len(UNITS) - 1), max_size=6)
operations = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "mark", "unseen"]), unit_lists),
    min_size=1,
    max_size=5,
)


def apply_to_model(units: frozenset[int], ops: list[tuple[str, list[int]]]) -> frozenset[int]:
    """What a version built by ``ops`` on ``units`` must contain (the reference semantics).

    "mark" records units as seen (the record grows over the version's ops); "unseen"
    keeps only the units marked so far (its own list is not used).
    """
    current = set(units)
    seen: set[int] = set()
    for kind, indices in ops:
        if kind == "add":
            for i in indices:
                key = UNITS[i].repo_key() if UNITS[i].repo_key_fields else None
                if key is not None:
                    current = {
                        j
                        for j in current
                        if type(UNITS[j]) is not type(UNITS[i]) or UNITS[j].repo_key() != key
                    }
                current.add(i)
        elif kind == "remove":
            current -= set(indices)
        elif kind == "mark":
            seen |= set(indices)
        else:
            current &= seen
    return frozenset(current)


class Abort(Exception):
    """Raised inside a version that the rule wants to fail."""


class VersionMachine(RuleBasedStateMachine):
    backend = "asyncio"
    database = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self._cleanups: list[Callable[[], Any]] = []
        portal_cm = anyio.from_thread.start_blocking_portal(self.backend)
        self.portal = portal_cm.__enter__()
        self._cleanups.append(lambda: portal_cm.__exit__(None, None, None))
        url = self._database_url()
        self.store_cm = open_store(url)
        self.store: Store = self.portal.call(self.store_cm.__aenter__)
        self._cleanups.append(lambda: self.portal.call(self.store_cm.__aexit__, None, None, None))
        self.repository = self.portal.call(self.store.create_repository, Repository(name="machine"))
        saved = self.portal.call(self.store.save_content, [*UNITS])
        self.pk_of = {i: unit.pk for i, unit in enumerate(saved)}
        self.index_of = {pk: i for i, pk in self.pk_of.items()}
        self.versions: list[frozenset[int]] = [frozenset()]

    def _database_url(self) -> str:
        if self.database == "sqlite":
            directory = tempfile.mkdtemp(prefix="stageline-machine-")
            self._cleanups.append(lambda: shutil.rmtree(directory, ignore_errors=True))
            return f"{directory}/machine.db"
        base = sa.make_url(postgresql_base_url())
        schema = f"machine_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(base, poolclass=NullPool)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')

        def drop() -> None:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()

        self._cleanups.append(drop)
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    def teardown(self) -> None:
        for cleanup in reversed(self._cleanups):
            cleanup()

    async def _build(self, ops: list[tuple[str, list[int]]], outcome: str) -> NewVersion:
        new_version = self.store.new_version(self.repository)
        present = self.versions[-1]
        done: list[tuple[str, list[int]]] = []
        with anyio.CancelScope() as scope:
            try:
                async with new_version:
                    for kind, indices in ops:
                        units = [UNITS[i] for i in indices]
                        if kind == "add":
                            await new_version.add_content(units)
                        elif kind == "remove":
                            if any(i not in present for i in indices):
                                # Refused whole: the units that are there stay too.
                                with pytest.raises(StoreArgumentError, match="not in version"):
                                    await new_version.remove_content(units)
                            await new_version.remove_content(
                                [UNITS[i] for i in indices if i in present]
                            )
                        elif kind == "mark":
                            await new_version.mark_seen(units)
                        else:
                            await new_version.remove_unseen()
                        done.append((kind, indices))
                        present = apply_to_model(self.versions[-1], done)
                        assert await self._read(new_version.iter_content(chunk_size=2)) == present
                    if outcome == "raise":
                        raise Abort
                    if outcome == "cancel":
                        scope.cancel()
                        await anyio.sleep_forever()
            except Abort:
                pass
        return new_version

    @rule(ops=operations, outcome=st.sampled_from(["commit", "commit", "raise", "cancel"]))
    def build_version(self, ops: list[tuple[str, list[int]]], outcome: str) -> None:
        # Each unit object is reused, so a saved unit's pk stays valid across rules.
        for i, unit in enumerate(UNITS):
            unit.pk = self.pk_of[i]
        before = self.versions[-1]
        after = apply_to_model(before, ops)
        new_version = self.portal.call(self._build, ops, outcome)
        result = new_version.result
        if outcome != "commit" or after == before:
            assert result is None
            return
        assert result is not None
        assert result.number == len(self.versions)
        assert result.content_count == len(after)
        assert result.added_count == len(after - before)
        assert result.removed_count == len(before - after)
        self.versions.append(after)

    async def _read(self, chunks: AsyncIterator[list[Content]]) -> frozenset[int]:
        """The units an iter_content stream yields, checked against its docstring."""
        pks: list[int] = []
        async for chunk in chunks:
            # Non-empty lists of saved units, ordered by primary key.
            assert isinstance(chunk, list)
            assert chunk
            assert all(isinstance(unit, Content) and unit.pk is not None for unit in chunk)
            pks += [unit.pk or 0 for unit in chunk]
        assert pks == sorted(set(pks))
        return frozenset(self.index_of[pk] for pk in pks)

    async def _snapshot(self) -> list[tuple[frozenset[int], ...]]:
        found = []
        for version in await self.store.list_versions(self.repository):
            found.append(
                tuple(
                    [
                        await self._read(
                            self.store.iter_content(version, change=change, chunk_size=3)
                        )
                        for change in ("present", "added", "removed")
                    ]
                )
            )
        return found

    @invariant()
    def every_version_matches_the_model(self) -> None:
        before = [frozenset[int](), *self.versions]
        expected = [
            (after, after - previous, previous - after)
            for previous, after in zip(before, self.versions, strict=False)
        ]
        assert self.portal.call(self._snapshot) == expected


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize(
    "database",
    [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
    ],
)
def test_versions_follow_the_model(backend: str, database: str) -> None:
    """Any sequence of added, removed, mirrored, failed and cancelled versions matches the model."""
    if database == "postgresql":
        postgresql_base_url()  # skip (or fail under CI) before Hypothesis starts

    class Machine(VersionMachine):
        pass

    Machine.backend = backend
    Machine.database = database
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=25 if database == "sqlite" else 10,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
