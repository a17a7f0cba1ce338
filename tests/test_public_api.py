"""The public surface: every name in ``__all__`` imports, and nothing public is missing."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import stageline
from tests._source import parse_file

PUBLIC_PACKAGES = sorted(
    {"stageline"}
    | {
        info.name
        for info in pkgutil.walk_packages(stageline.__path__, "stageline.")
        if not any(part.startswith("_") for part in info.name.split("."))
    }
)


@pytest.mark.parametrize("module_name", PUBLIC_PACKAGES)
def test_all_names_import(module_name: str) -> None:
    """Every name listed in a public module's ``__all__`` exists."""
    module = importlib.import_module(module_name)
    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ lists {name!r}, which is missing"


@pytest.mark.parametrize("module_name", PUBLIC_PACKAGES)
def test_all_is_complete(module_name: str) -> None:
    """Every public class or function a public module defines or re-exports is in ``__all__``."""
    module = importlib.import_module(module_name)
    exported = set(module.__all__)
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, type(stageline)):
            continue
        if getattr(value, "__module__", "").startswith("stageline"):
            assert name in exported, f"{module_name}.{name} is public but not in __all__"


def test_every_stageline_exception_derives_from_the_root() -> None:
    """One root: every exception class stageline exports is a StagelineError."""
    for name in stageline.__all__:
        value = getattr(stageline, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, stageline.StagelineError), name


def test_the_version_is_the_one_pyproject_declares() -> None:
    """``stageline.__version__`` (kept beside the engine) equals pyproject.toml's version."""
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert stageline.__version__ == pyproject["project"]["version"]


def test_no_bare_builtin_errors_are_raised_on_purpose() -> None:
    """stageline raises its own classes (also ValueError/TypeError/RuntimeError), never the
    bare builtins, so ``except StagelineError`` catches every error it raises on purpose."""
    import ast
    from pathlib import Path

    builtins = {"ValueError", "TypeError", "RuntimeError", "KeyError", "Exception"}
    root = Path(stageline.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(parse_file(path)):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                if isinstance(func, ast.Name) and func.id in builtins:
                    found.append(f"{path.relative_to(root)}:{node.lineno} raises {func.id}")
    assert not found, "\n".join(found)
