"""NewVersion.add_content says how many units it added (the "Associating Content" count)."""

from __future__ import annotations

import pytest
from store_support import FileUnit, sha

from stageline.models import Repository
from stageline.store import Store

pytestmark = pytest.mark.anyio


async def test_add_content_counts_only_units_new_to_the_version(store: Store) -> None:
    """Present units count 0; new, restored and repo-key replacing units count 1 each."""
    repository = await store.create_repository(Repository(name="repo"))
    a, b, c, a_edited = await store.save_content(
        [
            FileUnit(path="a", digest=sha(1)),
            FileUnit(path="b", digest=sha(2)),
            FileUnit(path="c", digest=sha(3)),
            FileUnit(path="a", digest=sha(4)),
        ]
    )
    async with store.new_version(repository) as first:
        assert await first.add_content([a, b]) == 2
        assert await first.add_content([a, b]) == 0
        assert await first.add_content([]) == 0
    async with store.new_version(repository) as second:
        assert await second.add_content([a, b, c]) == 1
        await second.remove_content([b])
        # b comes back, a_edited replaces a (same path): both are new to the version.
        assert await second.add_content([b, a_edited]) == 2
    assert second.result is not None
    assert (second.result.added_count, second.result.content_count) == (2, 3)
