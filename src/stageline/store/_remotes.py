"""Store calls on remotes and remote artifacts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from .._exceptions import StoreError
from ..models import DIGEST_FIELDS, ContentArtifact, DownloadPolicy, Remote, RemoteArtifact
from . import _schema as t
from ._database import Runner, chunks, require_pk
from ._values import NAME_MAX_CHARS, check_file_values, check_int, check_text

__all__ = ["RemoteCalls"]

_REMOTE_SETTINGS = (
    "policy",
    "download_concurrency",
    "max_retries",
    "rate_limit",
    "connect_timeout",
    "sock_read_timeout",
    "total_timeout",
    "headers",
    "username",
    "password",
    "proxy_url",
    "proxy_username",
    "proxy_password",
    "ca_cert",
    "client_cert",
    "client_key",
    "tls_validation",
)


class RemoteCalls:
    """The remote calls of :class:`~stageline.store.Store` and of a unit of work."""

    _runner: Runner
    # Saved remotes by pk, so that remote artifacts read back share one Remote per row.
    _remotes: dict[int, Remote]

    async def save_remote(self, remote: Remote) -> Remote:
        """Insert a remote, or update it when it already has a ``pk``.

        Credentials are stored as given (in the clear): protect the database accordingly.

        Returns:
            ``remote``, with its ``pk`` set.

        Raises:
            StoreArgumentError: the name or url holds a NUL character, or the name is longer
                than 255 characters.
            StoreError: the database failed, or the remote's ``pk`` names no saved remote.
        """
        check_text(remote.name, "remote name", max_chars=NAME_MAX_CHARS)
        check_text(remote.url, "remote url")
        settings = {name: getattr(remote, name) for name in _REMOTE_SETTINGS}
        settings["policy"] = str(remote.policy)
        values = {"name": remote.name, "url": remote.url, "settings": json.dumps(settings)}
        pk = remote.pk

        def work(conn: sa.Connection) -> int:
            if pk is None:
                result = conn.execute(sa.insert(t.remotes).values(values).returning(t.remotes.c.id))
                return int(result.scalar_one())
            result = conn.execute(sa.update(t.remotes).where(t.remotes.c.id == pk).values(values))
            if result.rowcount != 1:
                raise StoreError(f"remote {pk} does not exist; save it with pk=None to insert it")
            return pk

        remote.pk = await self._runner.run("save a remote", work, write=True)
        self._remotes[remote.pk] = remote
        return remote

    async def get_remote(self, pk: int) -> Remote:
        """The saved remote with primary key ``pk``.

        Raises:
            StoreArgumentError: ``pk`` is beyond the range of primary keys.
            StoreError: no such remote, or the database failed.
        """
        check_int(pk, "remote pk")
        cached = self._remotes.get(pk)
        if cached is not None:
            return cached

        def work(conn: sa.Connection) -> Any:
            return conn.execute(sa.select(t.remotes).where(t.remotes.c.id == pk)).one_or_none()

        row = await self._runner.run("read a remote", work, write=False)
        if row is None:
            raise StoreError(f"remote {pk} does not exist")
        settings = json.loads(row.settings)
        settings["policy"] = DownloadPolicy(settings["policy"])
        remote = Remote(url=row.url, name=row.name, pk=row.id, **settings)
        self._remotes[pk] = remote
        return remote

    async def save_remote_artifacts(
        self, remote_artifacts: Sequence[RemoteArtifact]
    ) -> list[RemoteArtifact]:
        """Insert-or-update remote artifacts, unique by (content artifact, remote).

        A new pair is inserted. An existing pair whose url differs gets the new url and
        digests (the upstream moved the file); an unchanged one is left alone. Every input
        gets the ``pk`` of its row.

        Args:
            remote_artifacts: remote artifacts whose content artifact and remote are saved.
                When a pair appears twice, the last one's url wins.

        Returns:
            ``remote_artifacts``, each with its ``pk`` set.

        Raises:
            ValueError: a content artifact or remote is not saved.
            StoreArgumentError: a url holds a NUL character, or a size or digest does not
                fit the database.
            StoreError: the database failed.
        """
        latest: dict[tuple[int, int], RemoteArtifact] = {}
        for ra in remote_artifacts:
            key = (
                require_pk(ra.content_artifact, "content artifact"),
                require_pk(ra.remote, "remote"),
            )
            check_text(ra.url, "remote artifact url")
            check_file_values(ra, "remote artifact")
            latest[key] = ra
        keys = sorted(latest)
        rows = [
            {
                "content_artifact_id": k[0],
                "remote_id": k[1],
                "url": latest[k].url,
                "size": latest[k].size,
                **{name: getattr(latest[k], name) for name in DIGEST_FIELDS},
            }
            for k in keys
        ]
        ra_t = t.remote_artifacts
        insert = self._runner.database.insert(ra_t)
        stmt = insert.on_conflict_do_update(
            index_elements=["content_artifact_id", "remote_id"],
            set_={name: getattr(insert.excluded, name) for name in ("url", "size", *DIGEST_FIELDS)},
            where=ra_t.c.url != insert.excluded.url,
        ).returning(ra_t.c.id, ra_t.c.content_artifact_id, ra_t.c.remote_id)

        def work(conn: sa.Connection) -> dict[tuple[int, int], int]:
            ids: dict[tuple[int, int], int] = {}
            for chunk in chunks(rows):
                for pk, ca_id, remote_id in conn.execute(stmt, list(chunk)):
                    ids[(ca_id, remote_id)] = pk
            rest = [k for k in keys if k not in ids]
            for pairs in chunks(rest):
                query = sa.select(ra_t.c.id, ra_t.c.content_artifact_id, ra_t.c.remote_id).where(
                    ra_t.c.content_artifact_id.in_([k[0] for k in pairs])
                )
                wanted = set(pairs)
                for pk, ca_id, remote_id in conn.execute(query):
                    if (ca_id, remote_id) in wanted:
                        ids[(ca_id, remote_id)] = pk
            return ids

        ids = await self._runner.run("save remote artifacts", work, write=True)
        await self._runner.note_growth("remote_artifacts", len(rows))
        for ra in remote_artifacts:
            ra.pk = ids[(require_pk(ra.content_artifact, ""), require_pk(ra.remote, ""))]
        return list(remote_artifacts)

    async def find_remote_artifacts(
        self, content_artifacts: Sequence[ContentArtifact], *, remote: Remote | None = None
    ) -> list[RemoteArtifact]:
        """The saved remote artifacts of saved content artifacts.

        Args:
            content_artifacts: saved content artifacts.
            remote: only this (saved) remote's; None for every remote's.

        Returns:
            The remote artifacts, ordered by content artifact then remote; each one's
            ``content_artifact`` is the object passed in.

        Raises:
            ValueError: a content artifact or the remote is not saved.
            StoreError: the database failed.
        """
        by_pk = {require_pk(ca, "content artifact"): ca for ca in content_artifacts}
        pks = sorted(by_pk)
        remote_pk = None if remote is None else require_pk(remote, "remote")
        ra_t = t.remote_artifacts

        def work(conn: sa.Connection) -> list[Any]:
            rows: list[Any] = []
            for chunk in chunks(pks):
                query = sa.select(ra_t).where(ra_t.c.content_artifact_id.in_(chunk))
                if remote_pk is not None:
                    query = query.where(ra_t.c.remote_id == remote_pk)
                rows.extend(
                    conn.execute(query.order_by(ra_t.c.content_artifact_id, ra_t.c.remote_id))
                )
            return rows

        rows = await self._runner.run("look up remote artifacts", work, write=False)
        if remote is not None and remote.pk is not None:
            self._remotes.setdefault(remote.pk, remote)
        result = []
        for row in rows:
            result.append(
                RemoteArtifact(
                    url=row.url,
                    content_artifact=by_pk[row.content_artifact_id],
                    remote=await self.get_remote(row.remote_id),
                    size=row.size,
                    **{name: getattr(row, name) for name in DIGEST_FIELDS},
                    pk=row.id,
                )
            )
        return result
