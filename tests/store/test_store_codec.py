"""The canonical JSON of keys and content fields: its fast path writes what json writes."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from stageline.models import Content
from stageline.store import _codec
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
    """A remembered key digest is the one computed afresh, after equal keys of other types too."""
    for values in keys + keys:
        assert key_digest("codec-test.t", values) == uncached_digest("codec-test.t", values)


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
    remembered = {**_codec._older_key_memo, **_codec._key_memo}
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
