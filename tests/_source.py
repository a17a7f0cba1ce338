"""Parsing stageline's own source in tests that read its imports or raises."""

from __future__ import annotations

import ast
import threading
from pathlib import Path


def parse_file(path: Path) -> ast.Module:
    """``ast.parse`` of the file, in a thread of its own.

    CPython 3.11 can leave a thread's AST recursion counter off after a deep recursion
    caught earlier in that thread (as a Hypothesis test may provoke), and then fails any
    later parse there with "SystemError: AST constructor recursion depth mismatch". A
    fresh thread starts with a fresh counter.
    """
    text = path.read_text()
    result: list[ast.Module] = []
    errors: list[BaseException] = []

    def parse() -> None:
        try:
            result.append(ast.parse(text, str(path)))
        except BaseException as exc:  # handed back to the caller below
            errors.append(exc)

    thread = threading.Thread(target=parse, name=f"parse {path.name}")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]
