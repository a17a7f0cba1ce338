"""The layers point one way: each part of stageline imports only from the layers below it.

The check reads every module's imports with ``ast`` (imports inside functions and under
``TYPE_CHECKING`` included: a lazy import is still a dependency) and compares the layer of
the importing module with the layer of what it imports. ``docs/architecture.md`` draws
the same table; keep the two in step.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._source import parse_file

ROOT = Path(__file__).parent.parent
SOURCES = {"stageline": ROOT / "src" / "stageline", "stageline_compat": ROOT / "compat"}

#: Bottom to top. A module may import from its own part and from any part of a lower
#: layer; parts that share a layer (store, storage, download) may not import each other.
#: A part is a module prefix; the engine's modules form one part.
LAYERS: list[tuple[str, ...]] = [
    ("engine",),
    ("stageline.progress",),
    ("stageline.models",),
    ("stageline._declarative",),
    ("stageline.store", "stageline.storage", "stageline.download"),
    ("stageline.stages",),
    ("stageline.sync",),
    ("stageline.plugins",),
    # The content app (ASGI) serves versions; the CLI's `serve` runs it.
    ("stageline.content_app",),
    ("stageline.cli",),
    ("stageline.__main__",),
    # Helpers for plugin authors' tests, above everything they may want to test.
    ("stageline.testing",),
    # The re-exports of the top-level package, and the asyncio shim built on all of it.
    ("stageline",),
    ("stageline_compat",),
]

#: The engine: stages, the pipeline, the channels between stages, the item protocol, the
#: exception tree, and what the layers above share without importing each other: the
#: running sync's temporary directory, the package's version, and the slot setters of
#: the hand-written initializers.
ENGINE = (
    "stageline._exceptions",
    "stageline._stage",
    "stageline._pipeline",
    "stageline._channel",
    "stageline._resolvable",
    "stageline._tempdir",
    "stageline._about",
    "stageline._slots",
)


def _part_of(module: str) -> str | None:
    """The part (an entry of LAYERS) that ``module`` belongs to: its longest prefix."""
    if any(module == m or module.startswith(m + ".") for m in ENGINE):
        return "engine"
    best: str | None = None
    for layer in LAYERS:
        for part in layer:
            if (module == part or module.startswith(part + ".")) and (
                best is None or len(part) > len(best)
            ):
                best = part
    return best


def _layer_of(part: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if part in layer)


def _modules() -> Iterator[tuple[str, Path]]:
    for top, directory in SOURCES.items():
        base = directory if top == "stageline" else directory / top
        for path in sorted(base.rglob("*.py")):
            relative = path.relative_to(base).with_suffix("")
            parts = [top, *relative.parts]
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def _imports(module: str, path: Path) -> Iterator[tuple[str, list[str], int]]:
    """(imported module, names imported from it, line) for every import in the file."""
    tree = parse_file(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [alias.name for alias in node.names]
            if node.module is None:
                # "from . import x": x may be a submodule.
                for name in names:
                    yield f"{target}.{name}", [], node.lineno
            else:
                yield target, names, node.lineno


def _violations() -> Iterator[str]:
    for module, path in _modules():
        own = _part_of(module)
        assert own is not None, f"{module} belongs to no layer; add it to LAYERS"
        for target, names, line in _imports(module, path):
            if not target.startswith(("stageline.", "stageline_compat")) and target != "stageline":
                continue
            other = _part_of(target)
            if other is None:
                yield f"{path.relative_to(ROOT)}:{line} imports {target}, which has no layer"
                continue
            if other == own:
                continue
            where = f"{path.relative_to(ROOT)}:{line}"
            if _layer_of(other) > _layer_of(own):
                yield f"{where}: {own} imports upward from {other} ({target})"
            elif _layer_of(other) == _layer_of(own):
                yield f"{where}: {own} imports its sibling {other} ({target})"
            # Below: only the public interface. A private module of another subpackage,
            # or a private name, marks a seam in the wrong place.
            private_module = any(
                piece.startswith("_") for piece in target[len(other) :].split(".") if piece
            )
            if private_module and other not in ("engine", "stageline._declarative"):
                yield f"{where}: {own} reaches into the private module {target}"
            for name in names:
                if name.startswith("_"):
                    yield f"{where}: {own} imports the private name {target}.{name}"


def test_every_module_has_a_layer() -> None:
    """Every module of the two packages is placed in the layer table."""
    missing = [module for module, _path in _modules() if _part_of(module) is None]
    assert not missing


def test_imports_point_down() -> None:
    """No module imports from a layer above it, from a sibling part, or private names below."""
    found = list(_violations())
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("stageline.store._version", "stageline.store"),
        ("stageline._stage", "engine"),
        ("stageline", "stageline"),
        ("stageline_compat.stages", "stageline_compat"),
    ],
)
def test_parts_are_found_by_longest_prefix(module: str, expected: str) -> None:
    """The check itself: a module belongs to the most specific entry of the table."""
    assert _part_of(module) == expected
