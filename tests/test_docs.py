"""The examples in docs/testing.md run and pass, on asyncio and trio."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
