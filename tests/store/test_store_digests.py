"""Looking artifacts up by a digest other than sha256, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

import pytest

from stageline import StoreArgumentError
from stageline.models import Artifact
from stageline.store import Store

pytestmark = pytest.mark.anyio


def artifact_of(data: bytes) -> Artifact:
    """An unsaved artifact carrying every digest of ``data``."""
    return Artifact(
        size=len(data),
        **{kind: hashlib.new(kind, data).hexdigest() for kind in ("sha224", "sha256", "sha384")},
        sha512=hashlib.sha512(data).hexdigest(),
    )


async def test_artifacts_are_found_by_any_digest_kind(store: Store) -> None:
    """sha512, sha384 and sha224 values each find the saved artifact they belong to."""
    one, two = artifact_of(b"one"), artifact_of(b"two")
    saved = {a.sha256: a for a in await store.save_artifacts([one, two])}
    unknown = hashlib.sha512(b"never saved").hexdigest()
    for kind in ("sha512", "sha384", "sha224"):
        value = getattr(one, kind)
        found = await store.find_artifacts_by_digest(kind, [value, value, unknown])
        assert list(found) == [value]
        assert found[value].pk == saved[one.sha256].pk
        assert found[value].sha256 == one.sha256
    assert await store.find_artifacts_by_digest("sha512", []) == {}


async def test_a_digest_kind_the_store_does_not_know_is_refused(store: Store) -> None:
    """An unknown kind is a StoreArgumentError (a ValueError) naming it, not an SQL error."""
    with pytest.raises(StoreArgumentError, match="'whirlpool'") as info:
        await store.find_artifacts_by_digest("whirlpool", ["00"])
    assert isinstance(info.value, ValueError)


async def test_a_unit_of_work_looks_up_by_digest_in_its_transaction(store: Store) -> None:
    """An artifact saved inside a unit of work is found by sha512 there before the commit."""
    artifact = artifact_of(b"inside")
    async with store.unit_of_work() as uow:
        [saved] = await uow.save_artifacts([artifact])
        found = await uow.find_artifacts_by_digest("sha512", [artifact.sha512 or ""])
        assert found[artifact.sha512 or ""].pk == saved.pk
