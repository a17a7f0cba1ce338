"""The download layer's error classes, and the layers below it not importing it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import stageline
from stageline import (
    DownloaderFactoryClosed,
    DownloaderFactoryError,
    DownloadError,
    MalformedDigestError,
    StagelineError,
)
from stageline.download import DownloaderFactory
from stageline.models import Remote
from tests._source import parse_file

pytestmark = pytest.mark.anyio

SOURCE = Path(stageline.__file__).parent


async def test_a_closed_factory_refuses_with_a_stageline_runtime_error() -> None:
    """A downloader asked of a closed factory is a DownloaderFactoryClosed.

    It was a bare RuntimeError, which ``except StagelineError`` did not catch.
    """
    remote = Remote(url="http://127.0.0.1:1/")
    async with DownloaderFactory() as factory:
        pass
    with pytest.raises(StagelineError, match="closed") as info:
        factory.get_downloader(remote, url="http://127.0.0.1:1/a")
    assert isinstance(info.value, DownloaderFactoryClosed)
    assert isinstance(info.value, DownloaderFactoryError)
    assert isinstance(info.value, RuntimeError)
    # Not a failed download: no retry and no mirror may take it for one.
    assert not isinstance(info.value, DownloadError)


async def test_a_malformed_expected_digest_is_a_stageline_value_error() -> None:
    """An expected digest that is not hex of its kind's length is a MalformedDigestError.

    It was a bare ValueError, which ``except StagelineError`` did not catch.
    """
    remote = Remote(url="http://127.0.0.1:1/")
    async with DownloaderFactory() as factory:
        with pytest.raises(StagelineError, match="must be 64 hex") as info:
            factory.get_downloader(
                remote, url="http://127.0.0.1:1/a", expected_digests={"sha256": "abc"}
            )
    assert isinstance(info.value, MalformedDigestError)
    assert isinstance(info.value, ValueError)
    assert not isinstance(info.value, DownloadError)


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere (functions, TYPE_CHECKING blocks included),
    relative imports resolved against the stageline package."""
    package = ".".join(("stageline", *path.relative_to(SOURCE).parent.parts))
    found: set[str] = set()
    for node in ast.walk(parse_file(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize(
    "module", ["models/_remote.py", "models/__init__.py", "_declarative.py"], ids=str
)
def test_the_layers_below_downloads_do_not_import_them(module: str) -> None:
    """Models and declarative objects never import stageline.download, not even lazily.

    ``Remote.get_downloader`` imported it inside the method, and ``_declarative`` under
    TYPE_CHECKING: the model layer depended on the layer above it.
    """
    imported = _imported_modules(SOURCE / module)
    upward = sorted(name for name in imported if name.startswith("stageline.download"))
    assert upward == []


def test_a_remote_no_longer_makes_downloaders() -> None:
    """Downloaders come from a DownloaderFactory handed to the code, not from the Remote."""
    assert not hasattr(Remote, "get_downloader")
