"""Request paths and Range headers, parsed: properties over any input a client may send."""

from __future__ import annotations

import urllib.parse

from hypothesis import given
from hypothesis import strategies as st

from stageline import UnsafePathError
from stageline.content_app._ranges import UNSATISFIABLE, parse_range
from stageline.content_app._routes import Route, parse_path
from stageline.models import check_relative_path

# Path bytes biased toward what traversal attempts are made of.
PIECES = st.sampled_from(
    [
        b"/",
        b".",
        b"..",
        b"%2e",
        b"%2E",
        b"%2f",
        b"%2F",
        b"%5c",
        b"\\",
        b"%00",
        b"a",
        b"b",
        b"latest",
        b"1",
        b"%ff",
        b"%c3%a9",
        b"%",
        b"//",
        b"~",
        b"%252e",
    ]
)
RAW_PATHS = st.one_of(
    st.lists(PIECES, max_size=12).map(lambda parts: b"/" + b"".join(parts)),
    st.binary(max_size=40).map(lambda data: b"/" + data),
)


@given(RAW_PATHS)
def test_a_parsed_path_is_always_a_safe_relative_path(raw: bytes) -> None:
    """Whatever the bytes, a route's file path passes check_relative_path and its
    repository and version are single safe segments."""
    route = parse_path(raw)
    if route is None:
        return
    if route.path:
        assert check_relative_path(route.path) == route.path
    for segment in (route.repository, route.version):
        if segment is not None:
            assert check_relative_path(segment) == segment
            assert "/" not in segment


# Segments hold no "/": an encoded slash inside a segment is refused by design (see
# test_paths_that_name_nothing), so a segment "0/0" is not a path one can ask for that way.
@given(
    st.lists(
        st.text(st.characters(exclude_characters="/"), min_size=1, max_size=8),
        min_size=1,
        max_size=5,
    )
)
def test_every_safe_path_can_be_asked_for(segments: list[str]) -> None:
    """A safe relative path, percent-encoded segment by segment, parses back to itself."""
    path = "/".join(segments)
    try:
        check_relative_path(path)
    except UnsafePathError:
        return
    raw = "/files/3/" + "/".join(urllib.parse.quote(s, safe="") for s in segments)
    assert parse_path(raw.encode()) == Route(
        repository="files", version="3", number=3, path=path, folder=False
    )


def test_paths_that_name_nothing() -> None:
    """Traversal and malformed paths are refused outright."""
    for raw in [
        b"/files/1/../a",
        b"/files/1/%2e%2e/a",
        b"/files/1/a%2fb",
        b"/files/1//a",
        b"/files/1/a%00",
        b"/files/1/a%5cb",
        b"/files/01/a",
        b"/files/x/a",
        b"a",
        b"/files/1/%ff",
    ]:
        assert parse_path(raw) is None, raw
    assert parse_path(b"/") == Route()
    assert parse_path(b"/files") == Route(repository="files", folder=False)
    assert parse_path(b"/files/latest/") == Route(repository="files", version="latest", folder=True)


@given(st.integers(min_value=0, max_value=10_000), st.text(max_size=30))
def test_a_range_is_within_the_file_or_refused(size: int, header: str) -> None:
    """Any Range header gives a non-empty range inside the file, unsatisfiable, or None."""
    wanted = parse_range(header, size)
    if wanted is None or wanted == UNSATISFIABLE:
        return
    start, end = wanted
    assert 0 <= start < end <= size


@given(
    st.integers(min_value=1, max_value=10_000),
    st.integers(min_value=0, max_value=20_000),
    st.integers(min_value=0, max_value=20_000),
)
def test_a_closed_range_is_the_bytes_asked_for(size: int, first: int, last: int) -> None:
    """bytes=a-b selects [a, min(b + 1, size)), is unsatisfiable past the end, and is
    ignored when b < a."""
    wanted = parse_range(f"bytes={first}-{last}", size)
    if last < first:
        assert wanted is None
    elif first >= size:
        assert wanted == UNSATISFIABLE
    else:
        assert wanted == (first, min(last + 1, size))
