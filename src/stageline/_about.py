"""The package's version, at the bottom of the layers so that any layer may name it.

``stageline.__version__`` re-exports it; the download layer puts it in its User-Agent.
Keep it equal to ``version`` in ``pyproject.toml``.
"""

from typing import Final

__all__ = ["VERSION"]

VERSION: Final = "0.1.0.dev0"
