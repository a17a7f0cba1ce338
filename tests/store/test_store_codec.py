"""The canonical JSON of keys and content fields: its fast path writes what json writes,
and what is saved is read back as it was."""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stageline import ContentTypeError
from stageline.models import Content
from stageline.store import Store, _codec, _content, open_store
from stageline.store._codec import _canonical, _digest, _key_json, key_digest

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # any code point, lone surrogates included
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.lists(children, max_size=5).map(tuple)
        | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


def reference(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@given(value=values)
@settings(max_examples=200)
def test_canonical_text_is_json_with_sorted_keys_and_no_spaces(value: Any) -> None:
    """Any JSON value (flat or nested, any strings) gets exactly json.dumps's canonical text."""
    assert _canonical(value) == reference(value)


@given(keys=st.lists(st.integers() | st.text(max_size=3), min_size=2, max_size=4, unique=True))
def test_dicts_with_keys_other_than_strings_are_written_as_json_writes_them(
    keys: list[Any],
) -> None:
    """Non-string keys take json's own path: the same text, or the same TypeError."""
    value = dict.fromkeys(keys, 1)
    try:
        expected = reference(value)
    except TypeError:
        try:
            _canonical(value)
        except TypeError:
            return
        raise AssertionError(f"{value!r}: json refuses it, _canonical did not") from None
    assert _canonical(value) == expected


def uncached_digest(type_name: str, values: tuple[Any, ...]) -> str:
    """The key digest computed afresh, as the store did before keys were remembered."""
    return _digest(type_name, _key_json(type_name, values))


@given(keys=st.lists(st.tuples(st.integers() | st.booleans() | st.text(max_size=3)), max_size=8))
def test_remembered_key_digests_equal_fresh_ones_in_any_order(keys: list[tuple[Any, ...]]) -> None:
    """A remembered key digest (and JSON) is the one computed afresh, after equal keys of
    other types too."""
    for values in keys + keys:
        assert key_digest("codec-test.t", values) == uncached_digest("codec-test.t", values)
        key_json = _key_json("codec-test.t", values)
        assert _codec._key_json_and_digest("codec-test.t", values) == (
            key_json,
            _digest("codec-test.t", key_json),
        )


@pytest.mark.parametrize("values", [("a\ud800",), (7, "\udfff/b")], ids=["alone", "after an int"])
def test_a_key_that_is_not_unicode_is_refused_naming_it(values: tuple[Any, ...]) -> None:
    """A lone surrogate (os.fsdecode's stand-in for a byte that is not UTF-8) in a key is
    refused on the way to its digest, the key named, and nothing is remembered for it."""
    with pytest.raises(ContentTypeError, match=r"'codec-test\.surrogate' with key .*Unicode"):
        key_digest("codec-test.surrogate", values)
    assert "codec-test.surrogate" not in _codec._key_memo
    assert "codec-test.surrogate" not in _codec._older_key_memo


def test_equal_keys_of_other_types_get_their_own_digests() -> None:
    """1, True and 1.0 compare equal but are different keys: each gets its own digest."""
    digests = [key_digest("codec-test.t", (value,)) for value in (1, True, 1.0, 1, True, 1.0)]
    assert digests[:3] == digests[3:]
    assert len(set(digests[:3])) == 3


def test_remembered_keys_are_bounded_and_the_latest_are_kept() -> None:
    """The memory of keys holds at most two generations, and the keys met last stay in it."""
    keys = [(f"path/{number}", number) for number in range(3 * _codec._KEY_MEMO_SIZE)]
    for values in keys:
        key_digest("codec-test.bounded", values)
    remembered = [
        (type_name, values)
        for memo in (_codec._older_key_memo, _codec._key_memo)
        for type_name, by_values in memo.items()
        for values in by_values
    ]
    assert len(remembered) <= 2 * _codec._KEY_MEMO_SIZE
    assert ("codec-test.bounded", keys[-1]) in remembered
    assert key_digest("codec-test.bounded", keys[-1]) == uncached_digest(
        "codec-test.bounded", keys[-1]
    )


@attrs.define(kw_only=True, eq=False)
class _Wide(Content):
    """A content type with fields of every kind, declared out of alphabetical order."""

    type_name: ClassVar[str] = "codec-test.wide"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("zeta",)

    zeta: Any = None
    alpha: Any = None
    mid: Any = None


@attrs.define(kw_only=True, eq=False)
class _One(Content):
    type_name: ClassVar[str] = "codec-test.one"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("only",)

    only: Any = None


@attrs.define(kw_only=True, eq=False)
class _OwnData(Content):
    """A type whose data() adds a field: its dict is encoded as it comes."""

    type_name: ClassVar[str] = "codec-test.own-data"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("name",)

    name: str = ""

    def data(self) -> dict[str, Any]:
        return {**super().data(), "extra": [self.name]}


@given(zeta=values, alpha=values, mid=values, only=values, name=st.text())
@settings(max_examples=200)
def test_unit_fields_are_written_as_canonical_json_of_their_data(
    zeta: Any, alpha: Any, mid: Any, only: Any, name: str
) -> None:
    """A unit's fields encode to exactly the canonical JSON of its data(), whatever they hold
    (the per-class fast path, its fallback for nested or float values, and an overridden
    data())."""
    for unit in (_Wide(zeta=zeta, alpha=alpha, mid=mid), _One(only=only), _OwnData(name=name)):
        assert _codec._data_json(unit) == reference(unit.data())


@attrs.define(kw_only=True, eq=False)
class _Anything(Content):
    """A type whose one field holds any JSON value (floats, nesting, any text)."""

    type_name: ClassVar[str] = "codec-test.anything"
    natural_key_fields: ClassVar[tuple[str, ...]] = ("number",)

    number: int
    value: Any = None


# What a text column can hold (lone surrogates are refused on the way in, see
# test_store_values), with the words NaN and Infinity, which SQLite's JSON refuses
# outside strings, made likely inside them.
storable_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(blacklist_categories=("Cs",)))
    | st.sampled_from(["NaN", "Infinity", "-Infinity", '{"a":NaN}', "\\u0000", 'é\n\t"'])
)
storable_values = st.recursive(
    storable_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(st.characters(blacklist_categories=("Cs",)), max_size=8), children, max_size=4
        )
    ),
    max_leaves=12,
)


@pytest.mark.anyio
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(storable_values, min_size=1, max_size=6))
async def test_found_units_hold_the_fields_they_were_saved_with(
    store: Store, values: list[Any]
) -> None:
    """find_content rebuilds each saved unit with the very field values it was saved with,
    whatever they hold: NaN and infinities, big integers, nested values, any text (SQLite
    hands most rows' fields over as parsed JSON, and the rest as text)."""
    start = await store._run(
        "count content",
        lambda conn: conn.exec_driver_sql("SELECT count(*) FROM content").scalar_one(),
        write=False,
    )
    units = [_Anything(number=start + i, value=value) for i, value in enumerate(values)]
    await store.save_content(units)
    found = await store.find_content([_Anything(number=unit.number) for unit in units])
    for unit, again in zip(units, found, strict=True):
        assert again is not None
        assert again is not unit
        assert again.pk == unit.pk
        # Compared as canonical JSON: NaN equals itself there, and a tuple its list.
        assert _codec._data_json(again) == _codec._data_json(unit)


@pytest.mark.anyio
async def test_sqlite_hands_over_plain_fields_parsed_and_nan_as_text(tmp_path: Any) -> None:
    """On SQLite the fields of a found unit arrive parsed with the rows (one parse, not two),
    except those SQLite's JSON would refuse or change, which arrive as their text."""
    async with open_store(str(tmp_path / "s.db")) as store:
        units = [_Anything(number=1, value=[1.5, "é"]), _Anything(number=2, value=math.nan)]
        await store.save_content(units)
        digests = [_codec.key_digest(_Anything.type_name, (unit.number,)) for unit in units]
        database = store._database
        found = await store._run(
            "probe", lambda conn: _content._found_by_digest(database, conn, digests), write=False
        )
    assert found[digests[0]][2] == {"number": 1, "value": [1.5, "é"]}
    assert found[digests[1]][2] == '{"number":2,"value":NaN}'
