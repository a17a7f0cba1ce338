"""``stageline content list NAME [--version N]``: the files of a version, in path order."""

from __future__ import annotations

import json
from typing import Any

import anyio
import click

from .._exceptions import StagelineError
from ..models import ContentArtifact, RepositoryVersion
from ..store import Store
from ._common import CommandError, make_workspace, workspace_options
from ._plugins import load_plugins
from ._repository import find_latest

__all__ = ["content"]

# Content artifacts read (and printed) per query.
_PAGE_SIZE = 1000


async def _find_version(store: Store, name: str, number: int | None) -> RepositoryVersion:
    latest = await find_latest(store, name)
    if number is None:
        return latest
    version = await store.find_version(name, number)
    if version is None:
        raise CommandError(
            f"repository {name!r} has no version {number} (its latest is {latest.number}); "
            f"`stageline repository show {name}` lists them"
        )
    return version


async def _rows(store: Store, version: RepositoryVersion) -> Any:
    """Pages of (content artifact, size, sha256, downloaded), in path order."""
    after: str | None = None
    while page := await store.list_content_artifacts(version, after=after, limit=_PAGE_SIZE):
        announced: dict[int | None, tuple[int | None, str | None]] = {}
        deferred = [ca for ca in page if ca.artifact is None]
        for remote_artifact in await store.find_remote_artifacts(deferred) if deferred else []:
            announced.setdefault(
                remote_artifact.content_artifact.pk,
                (remote_artifact.size, remote_artifact.sha256),
            )
        rows: list[tuple[ContentArtifact, int | None, str | None, bool]] = []
        for content_artifact in page:
            artifact = content_artifact.artifact
            if artifact is not None:
                rows.append((content_artifact, artifact.size, artifact.sha256, True))
            else:
                size, sha256 = announced.get(content_artifact.pk, (None, None))
                rows.append((content_artifact, size, sha256, False))
        yield rows
        after = page[-1].relative_path


@click.group("content")
def content() -> None:
    """List the content of repository versions."""


@content.command("list")
@click.argument("name")
@click.option(
    "--version",
    "number",
    type=click.IntRange(min=0),
    default=None,
    help="The version's number (default: the latest).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@workspace_options
def list_content(
    name: str, number: int | None, as_json: bool, home: str | None, database: str | None
) -> None:
    """List the files of a version of repository NAME, in path order.

    Each line: the path, the size, the sha256, and whether the file is downloaded
    ("stored") or will be fetched when first asked for ("on demand"; its size and
    sha256 are then those upstream announced).
    """
    load_plugins()
    workspace = make_workspace(home, database)

    async def main() -> None:
        async with workspace.open_store() as store:
            version = await _find_version(store, name, number)
            first = True
            if as_json:
                click.echo("[", nl=False)
            async for rows in _rows(store, version):
                for content_artifact, size, sha256, downloaded in rows:
                    if as_json:
                        item = {
                            "relative_path": content_artifact.relative_path,
                            "type": content_artifact.content.type_name,
                            "size": size,
                            "sha256": sha256,
                            "downloaded": downloaded,
                        }
                        click.echo(("" if first else ",\n") + json.dumps(item), nl=False)
                    else:
                        state = "stored" if downloaded else "on demand"
                        shown = "?" if size is None else str(size)
                        click.echo(
                            f"{content_artifact.relative_path}\t{shown}\t{sha256 or '?'}\t{state}"
                        )
                    first = False
            if as_json:
                click.echo("]")

    try:
        anyio.run(main)
    except StagelineError as exc:
        raise CommandError(f"{type(exc).__name__}: {exc}") from exc
