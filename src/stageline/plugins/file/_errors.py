"""The file plugin's errors."""

from __future__ import annotations

from ..._exceptions import StagelineError, redact_url

__all__ = ["ManifestError"]


class ManifestError(StagelineError):
    """A manifest line is malformed, or names a path the plugin refuses.

    The message names the manifest's url (credentials masked), the line number (from 1)
    and the rule the line breaks.

    Attributes:
        url: the manifest's url, credentials masked.
        line_number: the line that failed, counted from 1.
    """

    def __init__(self, url: str, line_number: int, problem: str) -> None:
        self.url = redact_url(url)
        self.line_number = line_number
        super().__init__(
            f"manifest {self.url} line {line_number}: {problem}; each line must be "
            "'relative_path,sha256,size' (a '#' comment or blank lines aside): fix the "
            "manifest upstream"
        )
