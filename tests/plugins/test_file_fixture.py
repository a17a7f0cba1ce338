"""write_fixture: a repository on disk whose manifests list exactly its files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from stageline import InvalidValueError
from stageline.plugins.file import ManifestReader, write_fixture


def listed(manifest: Path) -> dict[str, tuple[str, int]]:
    """relative path (from the manifest's folder) -> (sha256, size) of each entry."""
    reader = ManifestReader(manifest.as_uri())
    entries = reader.feed(manifest.read_bytes()) + reader.end()
    return {entry.relative_path: (entry.sha256, entry.size) for entry in entries}


def test_a_fixture_lists_exactly_what_it_wrote(tmp_path: Path) -> None:
    """Files are shared between levels; every manifest entry matches the file's bytes."""
    fixture = write_fixture(tmp_path / "repo", files=2500, size=40, nested=2)
    assert (fixture.files, fixture.bytes, fixture.manifests) == (2500, 100_000, 3)
    seen_files = 0
    folder = fixture.directory
    for level in range(3):
        entries = listed(folder / "PULP_MANIFEST")
        for path, (sha256, size) in entries.items():
            data = (folder / path).read_bytes()
            assert (hashlib.sha256(data).hexdigest(), len(data)) == (sha256, size)
        files = [path for path in entries if path.endswith(".bin")]
        seen_files += len(files)
        assert len(files) == (834 if level == 0 else 833)
        assert ("nested/PULP_MANIFEST" in entries) == (level < 2)
        folder = folder / "nested"
    assert seen_files == 2500
    assert len(list((tmp_path / "repo" / "files").iterdir())) == 1  # 834 files: one folder


def test_the_same_seed_writes_the_same_bytes_and_files_differ(tmp_path: Path) -> None:
    """A seed makes the content reproducible; files of one fixture all differ."""
    one = write_fixture(tmp_path / "one", files=20, size=64, seed=7)
    two = write_fixture(tmp_path / "two", files=20, size=64, seed=7)
    other = write_fixture(tmp_path / "other", files=20, size=64, seed=8)
    assert one.manifest.read_bytes() == two.manifest.read_bytes()
    assert one.manifest.read_bytes() != other.manifest.read_bytes()
    assert len({sha for sha, _ in listed(one.manifest).values()}) == 20


@pytest.mark.parametrize(
    ("argument", "value"), [("files", -1), ("size", -5), ("nested", True), ("files", 1.5)]
)
def test_bad_counts_are_refused(tmp_path: Path, argument: str, value: object) -> None:
    """A negative or non-int count is an InvalidValueError naming the argument."""
    arguments: dict[str, object] = {"files": 1, "size": 1, "nested": 0, argument: value}
    with pytest.raises(InvalidValueError, match=f"write_fixture: {argument} must be an int"):
        write_fixture(tmp_path, **arguments)  # type: ignore[arg-type]
