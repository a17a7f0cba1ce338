"""The plugin in docs/plugin-writing.md runs and its test passes, on asyncio and trio."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

GUIDE = Path(__file__).parent.parent / "docs" / "plugin-writing.md"

#: A ```python block whose first line names the file it belongs to, e.g. "# file_plugin.py".
BLOCK = re.compile(r"```python\n# (?P<name>[\w.]+\.py)\n(?P<code>.*?)```", re.DOTALL)


def test_the_guides_plugin_syncs(tmp_path: Path) -> None:
    """The guide's plugin and its test are written out and pass under pytest."""
    files = {match["name"]: match["code"] for match in BLOCK.finditer(GUIDE.read_text())}
    assert set(files) == {"file_plugin.py", "test_file_plugin.py"}
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
    assert "2 passed" in result.stdout
