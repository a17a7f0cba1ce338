"""``stageline repository list`` and ``stageline repository show NAME``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio
import click

from .._exceptions import SECRET_MASK, StagelineError, redact_url
from ..models import Remote, Repository, RepositoryVersion
from ..store import Store
from ..sync import Workspace
from ._common import CommandError, make_workspace, workspace_options
from ._plugins import load_plugins

__all__ = ["repository"]

T = TypeVar("T")


def remote_summary(remote: Remote) -> dict[str, Any]:
    """What may be shown of a remote: its settings, every secret masked.

    An explicit list, so that a setting added later is not shown until someone decides
    it may be: passwords and header values are masked, credentials in urls redacted.
    """
    return {
        "name": remote.name,
        "url": redact_url(remote.url),
        "policy": str(remote.policy),
        "download_concurrency": remote.download_concurrency,
        "max_retries": remote.max_retries,
        "rate_limit": remote.rate_limit,
        "connect_timeout": remote.connect_timeout,
        "sock_read_timeout": remote.sock_read_timeout,
        "total_timeout": remote.total_timeout,
        "headers": dict.fromkeys(remote.headers, SECRET_MASK),
        "username": remote.username,
        "password": None if remote.password is None else SECRET_MASK,
        "proxy_url": None if remote.proxy_url is None else redact_url(remote.proxy_url),
        "proxy_username": remote.proxy_username,
        "proxy_password": None if remote.proxy_password is None else SECRET_MASK,
        "ca_cert": remote.ca_cert,
        "client_cert": remote.client_cert,
        "client_key": remote.client_key,
        "tls_validation": remote.tls_validation,
        "send_credentials_on_redirect": remote.send_credentials_on_redirect,
    }


async def find_latest(store: Store, name: str) -> RepositoryVersion:
    """The latest version of the repository ``name``.

    Raises:
        CommandError: there is no such repository.
    """
    version = await store.find_version(name)
    if version is None:
        raise CommandError(
            f"there is no repository named {name!r}; `stageline repository list` shows them"
        )
    return version


def run_reading(workspace: Workspace, read: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``read(store)`` on the workspace's open store; a failure is a one-line error."""

    async def main() -> T:
        async with workspace.open_store() as store:
            return await read(store)

    try:
        return anyio.run(main)
    except StagelineError as exc:
        raise CommandError(f"{type(exc).__name__}: {exc}") from exc


@click.group("repository", short_help="List the repositories, or show one.")
def repository() -> None:
    """List the repositories, or show one with its versions and remotes."""


@repository.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@workspace_options
def list_repositories(as_json: bool, home: str | None, database: str | None) -> None:
    """List the repositories, with their latest version and its unit count."""
    load_plugins()

    async def read(store: Store) -> list[tuple[Repository, RepositoryVersion]]:
        found = []
        for saved in await store.list_repositories():
            found.append((saved, await find_latest(store, saved.name)))
        return found

    rows = run_reading(make_workspace(home, database), read)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": saved.name,
                        "description": saved.description,
                        "latest_version": latest.number,
                        "content_count": latest.content_count,
                    }
                    for saved, latest in rows
                ]
            )
        )
        return
    if not rows:
        click.echo("No repositories yet: `stageline sync URL --repository NAME` makes one.")
        return
    table = [("NAME", "LATEST", "UNITS", "DESCRIPTION")]
    table.extend(
        (saved.name, str(latest.number), str(latest.content_count), saved.description)
        for saved, latest in rows
    )
    _echo_table(table)


@repository.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@workspace_options
def show_repository(name: str, as_json: bool, home: str | None, database: str | None) -> None:
    """Show repository NAME: its versions (units added, removed, total) and its remotes.

    The remotes are those the latest version's files were synced from; their passwords,
    header values and url credentials are masked.
    """
    load_plugins()

    async def read(store: Store) -> tuple[RepositoryVersion, list[RepositoryVersion], list[Remote]]:
        latest = await find_latest(store, name)
        versions = await store.list_versions(latest.repository)
        return latest, versions, await store.find_version_remotes(latest)

    latest, versions, remotes = run_reading(make_workspace(home, database), read)
    remote_summaries = [remote_summary(remote) for remote in remotes]
    summary = {
        "name": latest.repository.name,
        "description": latest.repository.description,
        "latest_version": latest.number,
        "versions": [
            {
                "number": v.number,
                "base_version": v.base_version,
                "added": v.added_count,
                "removed": v.removed_count,
                "total": v.content_count,
            }
            for v in versions
        ],
        "remotes": remote_summaries,
    }
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(f"Repository {latest.repository.name}")
    if latest.repository.description:
        click.echo(f"  {latest.repository.description}")
    click.echo("")
    table = [("VERSION", "ADDED", "REMOVED", "TOTAL")]
    table.extend(
        (str(v.number), str(v.added_count), str(v.removed_count), str(v.content_count))
        for v in versions
    )
    _echo_table(table)
    click.echo("")
    if not remotes:
        click.echo("Remotes: none (the latest version has no file synced from a remote)")
    for shown in remote_summaries:
        click.echo(f"Remote {shown['name']}")
        for key, value in shown.items():
            if key != "name" and value not in (None, {}):
                click.echo(f"  {key}: {value}")


def _echo_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
