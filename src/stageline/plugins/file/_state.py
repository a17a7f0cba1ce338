"""What the last sync of each repository read: the record behind the unchanged-manifest skip.

The record lives in a table of the plugin's own, ``file_plugin_syncs`` (one row per
repository), created on first use through a unit of work's ``run_sync``: it is the
plugin's state, not the store's schema, so it needs no stageline migration, and a store
the plugin never synced into never gets it.
"""

from __future__ import annotations

import json
import zlib
from typing import Any, Final

import attrs
import sqlalchemy as sa

from ...models import Repository
from ...store import Store

__all__ = ["SyncRecord", "read_record", "write_record"]

_metadata: Final = sa.MetaData()

_TABLE: Final = sa.Table(
    "file_plugin_syncs",
    _metadata,
    # The repository's id; no foreign key, so that the store may drop a repository without
    # knowing this table (a record of a vanished repository is never read).
    sa.Column("repository_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("manifest_sha256", sa.String(64), nullable=False),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("version_number", sa.BigInteger, nullable=False),
    sa.Column("skipped_units", sa.BigInteger, nullable=False),
)

# Serialises the creation of the table between PostgreSQL sessions (a transaction-level
# advisory lock): two first syncs at once would otherwise both try to create it.
_CREATE_LOCK: Final = zlib.crc32(b"stageline.plugins.file:file_plugin_syncs")


@attrs.frozen
class SyncRecord:
    """What a finished sync of a repository read, and the version it left.

    Attributes:
        manifest_sha256: the root manifest's sha256.
        options: the sync options that decide the result (url, policy, mirror).
        version_number: the repository's latest version when the sync ended.
        skipped_units: how many units the sync left out (``on_error="skip"``).
    """

    manifest_sha256: str
    options: dict[str, Any]
    version_number: int
    skipped_units: int


def _ensure_table(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_CREATE_LOCK)))
    _TABLE.create(conn, checkfirst=True)


async def read_record(store: Store, repository: Repository) -> SyncRecord | None:
    """The record of the last finished sync of ``repository``, or None.

    Raises:
        StoreError: the database failed.
    """

    def work(conn: sa.Connection) -> SyncRecord | None:
        _ensure_table(conn)
        row = conn.execute(
            sa.select(_TABLE).where(_TABLE.c.repository_id == repository.pk)
        ).one_or_none()
        if row is None:
            return None
        return SyncRecord(
            manifest_sha256=row.manifest_sha256,
            options=json.loads(row.options),
            version_number=row.version_number,
            skipped_units=row.skipped_units,
        )

    async with store.unit_of_work() as uow:
        return await uow.run_sync(work)


async def write_record(store: Store, repository: Repository, record: SyncRecord | None) -> None:
    """Replace the record of ``repository`` (None: forget it).

    Raises:
        StoreError: the database failed.
    """

    def work(conn: sa.Connection) -> None:
        _ensure_table(conn)
        conn.execute(sa.delete(_TABLE).where(_TABLE.c.repository_id == repository.pk))
        if record is not None:
            conn.execute(
                sa.insert(_TABLE).values(
                    repository_id=repository.pk,
                    manifest_sha256=record.manifest_sha256,
                    options=json.dumps(record.options, sort_keys=True),
                    version_number=record.version_number,
                    skipped_units=record.skipped_units,
                )
            )

    async with store.unit_of_work() as uow:
        await uow.run_sync(work)
