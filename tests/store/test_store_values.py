"""SQLite and PostgreSQL refuse the same bad values with the same error, before any write."""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable
from typing import ClassVar

import attrs
import pytest
from store_support import FileUnit, count_rows, sha

from stageline import StagelineError, StoreArgumentError, StoreError, UnsafePathError
from stageline.models import Artifact, Content, ContentArtifact, Remote, RemoteArtifact, Repository
from stageline.store import Store

pytestmark = pytest.mark.anyio

LONE_SURROGATE = os.fsdecode(b"caf\xe9")


@attrs.define(eq=False, kw_only=True)
class LongTypeUnit(Content):
    """A content type whose name is longer than the content table's type column."""

    type_name: ClassVar[str] = "test." + "x" * 251
    natural_key_fields: ClassVar[tuple[str, ...]] = ("name",)

    name: str


@attrs.define(eq=False, kw_only=True)
class MeasuredUnit(Content):
    """A unit whose natural key is a float (and whose repository key is another)."""

    type_name: ClassVar[str] = "test.measured"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("value",)
    repo_key_fields: ClassVar[tuple[str, ...]] = ("slot",)

    value: float
    slot: float = 0.0


async def refused(call: Callable[[], Awaitable[object]], match: str) -> StoreArgumentError:
    """Await ``call``; it must raise StoreArgumentError (a StoreError and a ValueError)."""
    with pytest.raises(StoreArgumentError, match=match) as info:
        await call()
    assert isinstance(info.value, StoreError)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, StagelineError)
    return info.value


async def saved_unit(store: Store, path: str = "u") -> Content:
    [unit] = await store.save_content([FileUnit(path=path, digest=sha(99))])
    return unit


def bypassing(ca: ContentArtifact) -> ContentArtifact:
    """``ca`` with a NUL in its relative path, set past the model's own check, as a row
    that bypassed the validators would be: the store refuses it all the same."""
    object.__setattr__(ca, "relative_path", "a\x00b")
    return ca


async def test_nul_in_text_columns_is_refused(store: Store, database_url: str) -> None:
    """A NUL character in a relative path, name, description or url is refused alike."""
    unit = await saved_unit(store)
    ca_with_nul = ContentArtifact(content=unit, artifact=None, relative_path="nul")
    remote = await store.save_remote(Remote(url="http://r.test/", name="r"))
    ca = ContentArtifact(content=unit, artifact=None, relative_path="ok")
    await store.save_content([unit], [ca])
    calls: list[tuple[Callable[[], Awaitable[object]], str]] = [
        (lambda: store.save_content([unit], [bypassing(ca_with_nul)]), "relative path"),
        (lambda: store.create_repository(Repository(name="a\x00b")), "repository name"),
        (
            lambda: store.create_repository(Repository(name="a", description="x\x00")),
            "repository description",
        ),
        (lambda: store.get_repository("a\x00b"), "repository name"),
        (lambda: store.save_remote(Remote(url="http://r.test/", name="n\x00")), "remote name"),
        (lambda: store.save_remote(Remote(url="http://r\x00.test/", name="n")), "remote url"),
        (
            lambda: store.save_remote_artifacts(
                [RemoteArtifact(url="http://r.test/\x00", content_artifact=ca, remote=remote)]
            ),
            "remote artifact url",
        ),
    ]
    for call, match in calls:
        await refused(call, match + ".*NUL")
    assert count_rows(database_url, "repositories") == 0
    assert count_rows(database_url, "remote_artifacts") == 0


@pytest.mark.parametrize("name", ["a/b", "/a", "a/", ".", "..", "a\\b", "a\nb", "a\x7fb"])
async def test_a_repository_name_must_be_one_path_segment(store: Store, name: str) -> None:
    """A name the content app could not serve or export could not write (a '/', a
    backslash, a control character, '.' or '..') is refused, naming the rule; nothing is
    created."""
    with pytest.raises(StoreArgumentError, match="one segment") as info:
        await store.create_repository(Repository(name=name))
    assert repr(name) in str(info.value)
    assert await store.list_repositories() == []


async def test_a_repository_name_may_hold_dots_spaces_and_any_script(store: Store) -> None:
    """What is not a path separator, a control character, '.' or '..' stays allowed."""
    for name in ["my.repo", "...", "a b", "fedora-41_x86", "répertoire", "仓库"]:
        assert (await store.create_repository(Repository(name=name))).saved


async def test_text_that_is_not_unicode_is_refused(store: Store) -> None:
    """A lone surrogate in a relative path or a name is refused, not a raw encoding error:
    by the model for a relative path, and by the store for one set past the model's check."""
    unit = await saved_unit(store)
    with pytest.raises(UnsafePathError, match="lone surrogate"):
        ContentArtifact(content=unit, artifact=None, relative_path=LONE_SURROGATE)
    past_the_model = ContentArtifact(content=unit, artifact=None, relative_path="u")
    object.__setattr__(past_the_model, "relative_path", LONE_SURROGATE)
    await refused(
        lambda: store.save_content([unit], [past_the_model]),
        "relative path .* is not valid Unicode",
    )
    await refused(
        lambda: store.create_repository(Repository(name=LONE_SURROGATE)),
        "repository name .* is not valid Unicode",
    )


async def test_over_long_names_paths_and_digests_are_refused(
    store: Store, database_url: str
) -> None:
    """Names over 255 characters, paths over 2048 UTF-8 bytes, over-long digests: refused."""
    unit = await saved_unit(store)
    await refused(
        lambda: store.create_repository(Repository(name="r" * 256)),
        "256 characters long; at most 255",
    )
    await refused(
        lambda: store.save_remote(Remote(url="http://r.test/", name="n" * 256)),
        "remote name .* 256 characters long",
    )
    # 1025 characters, 2050 bytes: the limit is the index's, in bytes.
    await refused(
        lambda: store.save_content(
            [unit], [ContentArtifact(content=unit, artifact=None, relative_path="é" * 1025)]
        ),
        "2050 bytes long in UTF-8; at most 2048",
    )
    await refused(lambda: store.save_content([LongTypeUnit(name="a")]), "content type name")
    artifact = Artifact(sha256=sha(1))
    # An object changed behind its validators, as a plugin's code could.
    object.__setattr__(artifact, "md5", "a" * 33)
    await refused(lambda: store.save_artifacts([artifact]), "md5 of 33 characters")
    assert count_rows(database_url, "artifacts") == 0
    # At the limits, both databases store the values.
    await store.create_repository(Repository(name="r" * 255))
    await store.save_content(
        [unit], [ContentArtifact(content=unit, artifact=None, relative_path="é" * 1024)]
    )
    [ca] = await store.find_content_artifacts([unit])
    assert ca.relative_path == "é" * 1024


async def test_integers_beyond_their_columns_are_refused(store: Store) -> None:
    """A size beyond 64 bits, a version number beyond 32, a huge pk: refused, no OverflowError."""
    unit = await saved_unit(store)
    repository = await store.create_repository(Repository(name="r"))
    remote = await store.save_remote(Remote(url="http://r.test/", name="r"))
    ca = ContentArtifact(content=unit, artifact=None, relative_path="f")
    await store.save_content([unit], [ca])
    await refused(
        lambda: store.save_artifacts([Artifact(sha256=sha(1), size=2**70)]),
        f"has size {2**70}, beyond",
    )
    await refused(
        lambda: store.save_remote_artifacts(
            [RemoteArtifact(url="http://r.test/f", content_artifact=ca, remote=remote, size=2**63)]
        ),
        "beyond the largest size",
    )
    await refused(lambda: store.get_version(repository, 2**31), "version number 2147483648")
    await refused(lambda: store.get_remote(2**64), "remote pk .* out of range")
    huge = FileUnit(path="h", digest=sha(2), pk=2**63)
    await refused(lambda: store.find_content_artifacts([huge]), "pk of content .* out of range")
    # At the limit, both databases hold the size.
    [saved] = await store.save_artifacts([Artifact(sha256=sha(3), size=2**63 - 1)])
    assert (await store.find_artifacts([sha(3)]))[sha(3)].size == saved.size == 2**63 - 1


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
async def test_nan_and_infinity_in_a_key_are_refused(
    store: Store, database_url: str, bad: float
) -> None:
    """NaN or infinity in a natural or repository key is refused by saving and by lookups."""
    await refused(lambda: store.save_content([MeasuredUnit(value=bad)]), "NaN or infinity")
    await refused(lambda: store.find_content([MeasuredUnit(value=bad)]), "NaN or infinity")
    await refused(
        lambda: store.save_content([MeasuredUnit(value=1.5, slot=bad)]), "NaN or infinity"
    )
    nested = FileUnit(path=[bad], digest=sha(1))  # type: ignore[arg-type]
    await refused(lambda: store.save_content([nested]), "NaN or infinity")
    assert count_rows(database_url, "content") == 0


async def test_values_both_databases_hold_round_trip(store: Store) -> None:
    """NUL in content fields (kept as JSON escapes) and ints beyond 64 bits in JSON are kept."""
    unit = FileUnit(path="nul\x00inside", digest=sha(1), size=2**70)
    [saved] = await store.save_content([unit])
    [found] = await store.find_content([FileUnit(path="nul\x00inside", digest=sha(1))])
    assert found is not None
    assert found.pk == saved.pk
    assert (found.path, found.size) == ("nul\x00inside", 2**70)  # type: ignore[attr-defined]
    [measured] = await store.save_content([MeasuredUnit(value=1.5, slot=-0.25)])
    assert await store.find_content([MeasuredUnit(value=1.5)]) != [None]
    assert measured.saved
