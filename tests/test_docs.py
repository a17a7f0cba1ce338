"""The docs are true: the examples in docs/testing.md run and pass, on asyncio and trio,
and every number the docs state about a constant or a default is the code's."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import attrs
import pytest

import stageline
from stageline import CHECKPOINT_INTERVAL, DEFAULT_MAXSIZE, Stage, create_pipeline
from stageline.download import DownloaderFactory, RetrySettings
from stageline.models import Remote
from stageline.store import Store, open_store
from stageline.testing import minsizes

GUIDE = Path(__file__).parent.parent / "docs" / "testing.md"

#: A ```python block whose first line names the file it belongs to, e.g. "# conftest.py".
BLOCK = re.compile(r"```python\n# (?P<name>[\w.]+\.py)\n(?P<code>.*?)```", re.DOTALL)


def test_testing_guide_examples_pass(tmp_path: Path) -> None:
    """Every file the testing guide shows is written out and its tests pass under pytest."""
    files = {match["name"]: match["code"] for match in BLOCK.finditer(GUIDE.read_text())}
    assert "conftest.py" in files
    assert any(name.startswith("test_") for name in files)
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
    assert "skipped" not in result.stdout


DOCS = Path(__file__).parent.parent / "docs"

#: A number as the docs write it: "128", "10 000", "0.5".
NUMBER = r"\d[\d  _]*(?:\.\d+)?"


def number(text: str) -> float:
    """The value of a number as the docs write it."""
    return float(re.sub(r"[  _]", "", text))


def default_of(function: Callable[..., object], parameter: str) -> float:
    """The default of ``parameter`` in ``function``'s signature, as a number."""
    default = inspect.signature(function).parameters[parameter].default
    assert isinstance(default, int | float), f"{function.__qualname__}({parameter}=…)"
    return float(default)


def attrs_default(cls: type, field: str) -> float:
    """The default of an attrs field, as a number."""
    default = attrs.fields_dict(cls)[field].default
    assert isinstance(default, int | float), f"{cls.__qualname__}.{field}"
    return float(default)


@dataclass(frozen=True)
class Claim:
    """A number a doc states about the code: where, how it is written, what the code says.

    ``pattern`` has one group per number; ``actual`` returns the code's values, in order.
    """

    doc: str
    pattern: str
    actual: Callable[[], tuple[float, ...]]

    def __str__(self) -> str:
        return f"{self.doc}: {self.pattern}"


MiB = 1024 * 1024

CLAIMS = [
    Claim(
        "engine.md",
        rf"## `create_pipeline\(stages, maxsize=({NUMBER})\)`",
        lambda: (default_of(create_pipeline, "maxsize"),),
    ),
    Claim(
        "engine.md",
        rf"`CHECKPOINT_INTERVAL` \(({NUMBER})\)",
        lambda: (float(CHECKPOINT_INTERVAL),),
    ),
    Claim(
        "engine.md",
        rf"`async for batch in self\.batches\(minsize=({NUMBER})\):`",
        lambda: (default_of(Stage.batches, "minsize"),),
    ),
    Claim(
        "benchmarks.md",
        rf"Settings: `DEFAULT_MAXSIZE=({NUMBER})` \(stream buffer\), "
        rf"`CHECKPOINT_INTERVAL=({NUMBER})`, `minsize=({NUMBER})`",
        lambda: (
            float(DEFAULT_MAXSIZE),
            float(CHECKPOINT_INTERVAL),
            default_of(Stage.batches, "minsize"),
        ),
    ),
    Claim(
        "benchmarks.md",
        rf"with the default `minsize=({NUMBER})`",
        lambda: (default_of(Stage.batches, "minsize"),),
    ),
    Claim(
        "testing.md",
        rf"a `minsize` \(1 to ({NUMBER}) by default\)",
        lambda: (default_of(minsizes, "max_minsize"),),
    ),
    *(
        Claim(
            "downloads.md",
            rf"\| `{field}` \| ({NUMBER})(?: s)? \|",
            lambda field=field: (attrs_default(Remote, field),),
        )
        for field in ("download_concurrency", "max_retries", "connect_timeout", "sock_read_timeout")
    ),
    Claim(
        "downloads.md",
        rf"`batch_size` \(({NUMBER}) MiB\)",
        lambda: (default_of(DownloaderFactory, "batch_size") / MiB,),
    ),
    Claim(
        "downloads.md",
        rf"`RetrySettings\(wait_initial=({NUMBER}), wait_max=({NUMBER}), "
        rf"wait_jitter=({NUMBER})\)` by default",
        lambda: tuple(
            attrs_default(RetrySettings, field)
            for field in ("wait_initial", "wait_max", "wait_jitter")
        ),
    ),
    Claim(
        "downloads.md",
        rf"capped at `retry_after_max`\s+\(({NUMBER}) s\)",
        lambda: (attrs_default(RetrySettings, "retry_after_max"),),
    ),
    Claim(
        "store.md",
        rf"`open_store\(url_or_path, \*, max_threads=({NUMBER}), storage=None\)`",
        lambda: (default_of(open_store, "max_threads"),),
    ),
    Claim(
        "store.md",
        rf"store\.iter_content\(version, change=\"present\", chunk_size=({NUMBER})\)",
        lambda: (default_of(Store.iter_content, "chunk_size"),),
    ),
]


@pytest.mark.parametrize("claim", CLAIMS, ids=str)
def test_numbers_the_docs_state_match_the_code(claim: Claim) -> None:
    """Every place a doc states a default or a constant, it states the code's value."""
    text = (DOCS / claim.doc).read_text()
    matches = list(re.finditer(claim.pattern, text))
    assert matches, (
        f"docs/{claim.doc} no longer says {claim.pattern!r}: if the sentence changed, "
        "change the claim in tests/test_docs.py with it (never drop the check)"
    )
    for match in matches:
        stated = tuple(number(group) for group in match.groups())
        assert stated == claim.actual(), (
            f"docs/{claim.doc} states {match.group(0)!r}, but the code has {claim.actual()}"
        )


def public_constants() -> dict[str, float]:
    """Every public, upper-case numeric constant of stageline, by name."""
    constants: dict[str, float] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            value = getattr(module, name)
            if name.isupper() and isinstance(value, int | float) and not isinstance(value, bool):
                constants[name] = float(value)
    return constants


PUBLIC_MODULES = sorted(
    {"stageline"}
    | {
        info.name
        for info in pkgutil.walk_packages(stageline.__path__, "stageline.")
        if not any(part.startswith("_") for part in info.name.split("."))
    }
)

#: A constant named with a number: `NAME=128`, `NAME` (128), `NAME` = 128, NAME is 128.
CONSTANT_STATED = re.compile(
    rf"`?\b(?P<name>[A-Z][A-Z0-9_]{{2,}})\b`?(?:=| ?\(| = | is )(?P<value>{NUMBER})"
)


def test_every_constant_a_doc_names_with_a_number_has_that_value() -> None:
    """Wherever any doc writes a public constant with a number, the number is the constant's."""
    constants = public_constants()
    assert {"CHECKPOINT_INTERVAL", "DEFAULT_MAXSIZE", "DEFAULT_TIMEOUT"} <= set(constants)
    seen: set[str] = set()
    wrong: list[str] = []
    for doc in sorted(DOCS.glob("*.md")):
        if doc.name == "changelog.md":
            continue  # a record of past releases, whose values were true then
        for match in CONSTANT_STATED.finditer(doc.read_text()):
            name = match["name"]
            if name in constants:
                seen.add(name)
                if number(match["value"]) != constants[name]:
                    wrong.append(f"docs/{doc.name}: {match.group(0)!r}, code: {constants[name]}")
    assert not wrong, "docs state old values:\n" + "\n".join(wrong)
    assert {"CHECKPOINT_INTERVAL", "DEFAULT_MAXSIZE"} <= seen
