"""Parsing stageline's own source in tests that read its imports or raises."""

from __future__ import annotations

import ast
from pathlib import Path

#: How many times a parse is tried when CPython reports the race below.
ATTEMPTS = 10


def parse_file(path: Path) -> ast.Module:
    """``ast.parse`` of the file, tried again when another thread's parse raced it.

    CPython 3.11 keeps the AST constructor's recursion counter per interpreter, not per
    thread (python/cpython#106905): when another AST is built while one is (3.11's
    ``traceback`` parses each source line it shows, to place its ``^^^`` marks: another
    thread logging an exception, or a finalizer the garbage collector runs in the middle
    of the parse reporting an error, does so), the parse fails with "SystemError: AST
    constructor recursion depth mismatch". Each parse starts the counter afresh, so one
    that failed that way is tried again. (Parsing in a thread of its own, as this did
    before, did not help: the counter is shared, and the suite failed that way again.)
    """
    text = path.read_text()
    for attempt in range(ATTEMPTS):
        try:
            return ast.parse(text, str(path))
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc) or attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # the loop returns or raises
