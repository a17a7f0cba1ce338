"""``write_fixture``: a file repository on disk, for demos, tests and benchmarks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Final

import attrs

from ..._exceptions import InvalidValueError
from ._content import MANIFEST_NAME

__all__ = ["NESTED_FOLDER", "Fixture", "write_fixture"]

#: The folder each nested sub-repository lives in, inside its parent's.
NESTED_FOLDER: Final = "nested"

# Files per folder, so that a big fixture does not put 100 000 files in one directory.
_FILES_PER_FOLDER: Final = 1000


@attrs.frozen(kw_only=True)
class Fixture:
    """What :func:`write_fixture` wrote.

    Attributes:
        directory: the repository's folder; serve it, or sync ``directory.as_uri() + "/"``.
        manifest: its root ``PULP_MANIFEST``.
        files: the files written (manifests aside).
        bytes: their total size.
        manifests: the manifests written (the root's and each sub-repository's).
    """

    directory: Path
    manifest: Path
    files: int
    bytes: int
    manifests: int


def _content(seed: int | None, level: int, index: int, size: int) -> bytes:
    if seed is None:
        return os.urandom(size)
    block = hashlib.sha256(f"{seed}:{level}:{index}".encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def write_fixture(
    directory: str | os.PathLike[str],
    files: int,
    size: int,
    nested: int = 0,
    *,
    seed: int | None = 0,
) -> Fixture:
    """Write a file repository into ``directory``: files and a ``PULP_MANIFEST`` per level.

    The ``files`` files are shared out between the root and ``nested`` sub-repositories,
    each inside the previous one (``nested/PULP_MANIFEST``, ``nested/nested/PULP_MANIFEST``
    …, listed in their parent's manifest), the root getting what does not divide evenly.
    Each level keeps its files under ``files/NNNN/`` (at most 1000 per folder). Their
    content is derived from ``seed``, the level and the file's number, so that the same
    arguments write the same bytes and every file differs from the others (unless
    ``size`` is too small to tell them apart); ``seed=None`` writes random bytes.

    Args:
        directory: where to write; created when missing, existing files are overwritten.
        files: how many files (>= 0).
        size: the size of each file in bytes (>= 0).
        nested: how many levels of sub-repositories (>= 0).
        seed: the seed of the files' content, or None for random content.

    Returns:
        What was written.

    Raises:
        InvalidValueError: (a ``ValueError``) a count or size is negative or not an int.
        OSError: the files cannot be written.
    """
    for name, value in (("files", files), ("size", size), ("nested", nested)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidValueError(f"write_fixture: {name} must be an int >= 0, got {value!r}")
    root = Path(directory)
    levels = nested + 1
    shares = [files // levels] * levels
    shares[0] += files - sum(shares)
    child: tuple[str, int] | None = None  # the deeper level's manifest line: sha256, size
    total = 0
    for level in reversed(range(levels)):
        folder = root.joinpath(*[NESTED_FOLDER] * level)
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for index in range(shares[level]):
            relative = f"files/{index // _FILES_PER_FOLDER:04d}/{index:06d}.bin"
            path = folder / relative
            if index % _FILES_PER_FOLDER == 0:
                path.parent.mkdir(parents=True, exist_ok=True)
            data = _content(seed, level, index, size)
            path.write_bytes(data)
            lines.append(f"{relative},{hashlib.sha256(data).hexdigest()},{size}\n")
            total += size
        if child is not None:
            lines.append(f"{NESTED_FOLDER}/{MANIFEST_NAME},{child[0]},{child[1]}\n")
        manifest = "".join(lines).encode()
        (folder / MANIFEST_NAME).write_bytes(manifest)
        child = (hashlib.sha256(manifest).hexdigest(), len(manifest))
    return Fixture(
        directory=root,
        manifest=root / MANIFEST_NAME,
        files=files,
        bytes=total,
        manifests=levels,
    )
