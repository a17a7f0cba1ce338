"""Manifests: the line format, the errors naming url and line, unsafe paths, streaming."""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import anyio
import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stageline import (
    DeclarativeContent,
    InvalidValueError,
    Stage,
    Workspace,
    create_pipeline,
)
from stageline.models import Artifact, Remote
from stageline.plugins.file import (
    MAX_LINE_BYTES,
    FileFirstStage,
    ManifestEntry,
    ManifestError,
    ManifestReader,
    sync_files,
)
from stageline.storage import ArtifactStorage

from ..download._servers import LocalServer
from ._support import leftover_temporary_files, line, serve_directory, write_repository

URL = "http://user:secret@example.org/repo/PULP_MANIFEST"
SHA = hashlib.sha256(b"x").hexdigest()


def read_all(data: bytes, *, piece: int | None = None) -> list[ManifestEntry]:
    """Feed ``data`` to a reader, whole or ``piece`` bytes at a time."""
    reader = ManifestReader(URL)
    step = piece or max(len(data), 1)
    entries = []
    for start in range(0, len(data), step):
        entries.extend(reader.feed(data[start : start + step]))
    return entries + reader.end()


def test_comments_blank_lines_and_crlf_are_allowed() -> None:
    """Comments and blank lines are skipped but counted; CRLF and upper-case hex are fine."""
    data = f"# a comment\n\n  \na.txt,{SHA.upper()},1\r\n   # indented\nb/c,{SHA},0".encode()
    assert read_all(data) == [
        ManifestEntry("a.txt", SHA, 1, 4),
        ManifestEntry("b/c", SHA, 0, 6),
    ]


def test_a_path_may_hold_commas() -> None:
    """The last two commas split a line, so a path may contain commas."""
    assert read_all(f"a,b,c.txt,{SHA},3\n".encode()) == [ManifestEntry("a,b,c.txt", SHA, 3, 1)]


def test_chunk_boundaries_do_not_matter() -> None:
    """Fed one byte at a time or whole, a manifest gives the same entries."""
    data = "".join(f"dir/f{i}.txt,{SHA},{i}\n" for i in range(50)).encode()
    assert read_all(data, piece=1) == read_all(data) == read_all(data, piece=7)
    assert len(read_all(data)) == 50


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a.txt,1", "has 2 comma-separated fields, not 3"),
        (f"a.txt {SHA} 1", "has 1 comma-separated fields, not 3"),
        ("a.txt,abc,1", "'abc' is not a sha256"),
        (f"a.txt,{SHA},-1", "'-1' is not a size"),
        (f"a.txt,{SHA},1.5", "'1.5' is not a size"),
        (f"a.txt,{SHA}, 1", "' 1' is not a size"),
        (f"a.txt,{SHA},99999999999999999999", "is not a size"),
    ],
)
def test_a_malformed_line_names_the_url_and_line_number(text: str, problem: str) -> None:
    """Each malformation is a ManifestError with the url (masked), line number and rule."""
    data = f"# header\nok.txt,{SHA},1\n{text}\n".encode()
    with pytest.raises(ManifestError) as caught:
        read_all(data)
    message = str(caught.value)
    assert message.startswith(
        "manifest http://user:[secure]@example.org/repo/PULP_MANIFEST line 3:"
    )
    assert problem in message
    assert "secret" not in message
    assert caught.value.line_number == 3


@pytest.mark.parametrize(
    "path",
    ["../etc/passwd", "/etc/passwd", "a/../../b", "a//b", "a\\b", "./a", "a/", "a\x00b", ""],
)
def test_an_unsafe_path_is_refused(path: str) -> None:
    """Absolute, climbing, empty-segment, backslash or control-character paths are refused."""
    with pytest.raises(ManifestError, match=r"line 1: refused: .*unsafe relative path"):
        read_all(f"{path},{SHA},1\n".encode())


def test_a_manifest_listing_a_manifest_in_its_own_folder_is_refused() -> None:
    """A PULP_MANIFEST entry beside its manifest would list itself: refused."""
    with pytest.raises(ManifestError, match="line 1: the manifest lists a PULP_MANIFEST"):
        read_all(f"PULP_MANIFEST,{SHA},1\n".encode())


def test_a_line_that_is_not_utf8_is_refused() -> None:
    """Bytes that are not UTF-8 are a malformed line."""
    with pytest.raises(ManifestError, match="line 2: the line is not UTF-8"):
        read_all(b"# ok\n\xff\xfe,x,1\n")


def test_a_line_without_end_is_refused_before_it_is_held_whole() -> None:
    """A line longer than MAX_LINE_BYTES fails as soon as it is, not at the end of the file."""
    reader = ManifestReader(URL)
    reader.feed(b"# fine\n")
    reader.feed(b"x" * MAX_LINE_BYTES)
    with pytest.raises(ManifestError, match="line 2: the line is longer than"):
        reader.feed(b"x")


def write_manifest(path: Path, lines: int) -> int:
    """A manifest of ``lines`` entries at ``path``; return its size."""
    with path.open("w") as file:
        for i in range(lines):
            file.write(f"files/{i:07d}.bin,{SHA},{i}\n")
    return path.stat().st_size


@pytest.mark.anyio
async def test_entries_reach_the_pipeline_before_the_manifest_is_read(
    tmp_path: Path, workspace: Workspace
) -> None:
    """Parsing streams: the next stage gets entries while most of the manifest is unread."""
    manifest = tmp_path / "PULP_MANIFEST"
    size = await anyio.to_thread.run_sync(write_manifest, manifest, 20_000)
    remote = Remote(url="http://127.0.0.1:9/repo/PULP_MANIFEST", name="r")
    first = FileFirstStage(remote, workspace.storage, manifest=manifest, read_size=4096)
    probe = Probe(first)
    with anyio.fail_after(30):
        await create_pipeline([first, probe], maxsize=8)
    assert probe.items == first.units == 20_000
    assert first.bytes_read == size
    assert probe.read_at_first_item is not None
    assert probe.read_at_first_item <= 2 * 4096 < size // 100


class Probe(Stage):
    """Records how many manifest bytes the first stage had read when its first item came."""

    def __init__(self, first_stage: FileFirstStage) -> None:
        self.first_stage = first_stage
        self.read_at_first_item: int | None = None
        self.items_seen = 0

    @property
    def items(self) -> int:
        """How many items came."""
        return self.items_seen

    async def run(self) -> None:
        async for _ in super().items():
            if self.read_at_first_item is None:
                self.read_at_first_item = self.first_stage.bytes_read
            self.items_seen += 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("where", "bad_line"),
    [("root", "a.txt,nothex,1\n"), ("nested", "../escape.txt,{sha},1\n")],
)
async def test_a_sync_of_a_bad_manifest_fails_naming_it_and_leaves_nothing(
    workspace: Workspace, server: LocalServer, tmp_path: Path, where: str, bad_line: str
) -> None:
    """A bad line, in the root or a sub-repository, fails the sync: no version, no temp files."""
    root = tmp_path / "repo"
    bad = bad_line.format(sha=SHA)
    if where == "root":
        write_repository(root, {"ok.txt": b"fine"}, bad)
        expected = "repo/PULP_MANIFEST line 2:"
    else:
        nested = write_repository(root / "sub", {"x.txt": b"x"}, bad)
        write_repository(root, {"ok.txt": b"fine"}, line("sub/PULP_MANIFEST", nested))
        expected = "repo/sub/PULP_MANIFEST line 2:"
    url = serve_directory(server, root)
    with anyio.fail_after(30), pytest.raises(ManifestError, match=expected):
        await sync_files(url, "files", workspace=workspace)
    async with workspace.open_store() as store:
        repository = await store.get_repository("files")
        assert (await store.latest_version(repository)).number == 0
    assert leftover_temporary_files(workspace) == []


@pytest.mark.parametrize("read_size", [0, -1, 1.5, True])
def test_a_bad_read_size_is_refused(workspace: Workspace, read_size: object) -> None:
    """read_size must be an int >= 1: anything else is an InvalidValueError naming it."""
    remote = Remote(url="http://127.0.0.1:9/PULP_MANIFEST", name="r")
    with pytest.raises(InvalidValueError, match="read_size must be an int >= 1"):
        FileFirstStage(remote, workspace.storage, read_size=read_size)  # type: ignore[arg-type]


@settings(deadline=None, max_examples=200)
@given(
    lines=st.lists(
        st.one_of(
            st.tuples(
                st.text(alphabet="abc ,/é._-", min_size=1, max_size=12),
                st.integers(min_value=0, max_value=10**12),
            ),
            st.sampled_from(["", "# comment", "   ", "  # indented, comment"]),
        ),
        max_size=30,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=10),
    crlf=st.booleans(),
)
def test_any_chunking_reads_the_same_entries_as_the_whole(
    lines: list[tuple[str, int] | str], cuts: list[int], crlf: bool
) -> None:
    """Fed in chunks cut anywhere, the reader gives exactly the whole manifest's entries."""
    text_lines = [line if isinstance(line, str) else f"{line[0]},{SHA},{line[1]}" for line in lines]
    data = ("\r\n" if crlf else "\n").join(text_lines).encode()
    whole = _outcome(lambda: read_all(data))
    # The same entries, or the same error (an unsafe path was drawn), however it is cut.
    assert _outcome(lambda: _read_cut(data, cuts)) == whole
    if not isinstance(whole, str):
        expected = [line for line in lines if not isinstance(line, str)]
        assert [(e.relative_path, e.size) for e in whole] == expected


def _outcome(read: Callable[[], list[ManifestEntry]]) -> list[ManifestEntry] | str:
    try:
        return read()
    except ManifestError as error:
        return str(error)


def _read_cut(data: bytes, cuts: list[int]) -> list[ManifestEntry]:
    reader = ManifestReader(URL)
    entries: list[ManifestEntry] = []
    start = 0
    for cut in sorted({min(cut, len(data)) for cut in cuts}):
        entries.extend(reader.feed(data[start:cut]))
        start = cut
    entries.extend(reader.feed(data[start:]))
    return entries + reader.end()


@settings(deadline=None, max_examples=300)
@given(st.text(min_size=1, max_size=30))
def test_url_of_quotes_a_path_as_urllib_does(path: str) -> None:
    """A file's url is the base url plus the path quoted by urllib (``safe="/"``), whether
    or not the path needed quoting (a path of safe characters skips the call)."""
    remote = Remote(url="http://127.0.0.1:9/repo/PULP_MANIFEST", name="r")
    first = FileFirstStage(remote, ArtifactStorage(Path("/nonexistent")))
    try:
        expected = "http://127.0.0.1:9/repo/" + urllib.parse.quote(path, safe="/")
    except UnicodeEncodeError:
        return  # a lone surrogate: no manifest line (UTF-8) can hold one
    assert first.url_of(path) == expected


@pytest.mark.anyio
async def test_declared_artifacts_equal_checked_ones(tmp_path: Path, workspace: Workspace) -> None:
    """The first stage makes each entry's artifact without running Artifact's validators
    again (the reader checked the values): every field equals a checked Artifact's."""
    manifest = tmp_path / "PULP_MANIFEST"
    digest = "AB" * 32
    manifest.write_text(f"a b/é.txt,{digest},7\nz,{SHA},{2**63 - 1}\n")
    remote = Remote(url="http://127.0.0.1:9/repo/PULP_MANIFEST", name="r")
    first = FileFirstStage(remote, workspace.storage, manifest=manifest)
    seen: list[DeclarativeContent] = []

    class Keep(Stage):
        async def run(self) -> None:
            async for d in self.items():
                seen.append(d)
                d.resolve()

    with anyio.fail_after(30):
        await create_pipeline([first, Keep()])
    assert [d.d_artifacts[0].relative_path for d in seen] == ["a b/é.txt", "z"]
    for d, (sha256, size) in zip(seen, [(digest.lower(), 7), (SHA, 2**63 - 1)], strict=True):
        artifact = d.d_artifacts[0].artifact
        assert attrs.asdict(artifact) == attrs.asdict(Artifact(sha256=sha256, size=size))
    assert seen[0].d_artifacts[0].url == "http://127.0.0.1:9/repo/a%20b/%C3%A9.txt"
