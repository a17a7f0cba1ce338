"""HTML index pages: the repositories, a repository's versions, a folder of a version.

A folder is listed from the database, page by page in path order, so that a folder of a
million files streams out in bounded memory; a sub-folder is one entry, and the rows
under it are skipped by the next page's lower bound rather than read. Every name is
HTML-escaped and every link percent-encoded relative to the page (``./name``), so no
name can inject markup or become another scheme's url.
"""

from __future__ import annotations

import html
from collections.abc import AsyncGenerator, Iterable
from typing import Final

import attrs

from ..models import ContentArtifact, RepositoryVersion
from ..store import Store
from ._routes import quote_path

__all__ = ["Entry", "folder_entries", "page_end", "page_start", "render_entries"]

#: Content artifacts read per query while listing a folder.
PAGE_SIZE: Final = 1000

# Above every code point: a bound after every path that starts with a given folder.
_LAST: Final = "\U0010ffff"


@attrs.frozen
class Entry:
    """A line of an index page: a folder (its name ends in ``/``) or a file."""

    name: str
    folder: bool = False
    size: int | None = None
    deferred: bool = False


async def folder_entries(
    store: Store, version: RepositoryVersion, folder: str, *, page_size: int = PAGE_SIZE
) -> AsyncGenerator[list[Entry], None]:
    """The entries of ``folder`` ("" for the root) in ``version``, page by page, by path.

    Yields nothing when no file of the version is under ``folder``.
    """
    prefix = f"{folder}/" if folder else ""
    after: str | None = None
    last_folder: str | None = None
    last_file: str | None = None
    while True:
        page = await store.list_content_artifacts(
            version, prefix=prefix, after=after, limit=page_size
        )
        if not page:
            return
        entries: list[Entry] = []
        deferred: list[ContentArtifact] = []
        for content_artifact in page:
            path = content_artifact.relative_path
            name, slash, _ = path[len(prefix) :].partition("/")
            if slash:
                # The paths under a sub-folder are one run in path order: one entry.
                if name != last_folder:
                    entries.append(Entry(name, folder=True))
                    last_folder = name
            elif path != last_file:  # units sharing a path are listed once
                artifact = content_artifact.artifact
                entries.append(Entry(name, size=None if artifact is None else artifact.size))
                if artifact is None:
                    deferred.append(content_artifact)
                last_file = path
        if deferred:
            entries = await _with_announced_sizes(store, entries, deferred, prefix)
        if entries:
            yield entries
        if len(page) < page_size:
            return
        last = page[-1].relative_path
        name, slash, _ = last[len(prefix) :].partition("/")
        # Skip the rest of a sub-folder the page ended in: its entry is listed already.
        after = f"{prefix}{name}/{_LAST}" if slash else last


async def _with_announced_sizes(
    store: Store, entries: list[Entry], deferred: list[ContentArtifact], prefix: str
) -> list[Entry]:
    """Mark deferred files, with the size their remote artifacts announce."""
    sizes: dict[str, int | None] = {}
    for remote_artifact in await store.find_remote_artifacts(deferred):
        name = remote_artifact.content_artifact.relative_path[len(prefix) :]
        if sizes.get(name) is None:
            sizes[name] = remote_artifact.size
    names = {content_artifact.relative_path[len(prefix) :] for content_artifact in deferred}
    return [
        attrs.evolve(entry, size=sizes.get(entry.name), deferred=True)
        if not entry.folder and entry.name in names
        else entry
        for entry in entries
    ]


def page_start(title: str, *, parent: bool) -> str:
    """The head of an index page titled ``title`` (escaped here), with a link up when asked."""
    escaped = html.escape(title)
    up = '<tr><td><a href="../">../</a></td><td></td></tr>\n' if parent else ""
    return (
        "<!DOCTYPE html>\n"
        '<html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width">'
        f"<title>Index of {escaped}</title></head>\n"
        f"<body><h1>Index of {escaped}</h1>\n"
        "<table><tr><th>Name</th><th>Size</th></tr>\n"
        f"{up}"
    )


def render_entries(entries: Iterable[Entry]) -> str:
    """Table rows for ``entries``: escaped names, links relative to the page."""
    rows = []
    for entry in entries:
        shown = html.escape(entry.name + ("/" if entry.folder else ""))
        href = html.escape("./" + quote_path(entry.name) + ("/" if entry.folder else ""))
        if entry.folder:
            size = ""
        elif entry.size is None:
            size = "on demand" if entry.deferred else ""
        else:
            size = f"{entry.size}" + (" (on demand)" if entry.deferred else "")
        rows.append(f'<tr><td><a href="{href}">{shown}</a></td><td>{size}</td></tr>\n')
    return "".join(rows)


def page_end() -> str:
    """The end of an index page."""
    return "</table></body></html>\n"
