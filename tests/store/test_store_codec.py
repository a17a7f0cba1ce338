"""The canonical JSON of keys and content fields: its fast path writes what json writes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stageline.store._codec import _canonical

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
