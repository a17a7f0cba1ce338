"""Schema version 2: no stored file paths, CHECK constraints, unique remote names.

- ``artifacts.file`` is dropped. A file's location is derived from its sha256 and the
  storage root (``ArtifactStorage.path_for``), never stored, so moving the storage or
  sharing one PostgreSQL between hosts that mount it at different paths keeps every
  artifact reachable.
- CHECK constraints, so that a row that bypassed stageline's checks cannot be written:
  sizes are not negative (a negative size already stored becomes NULL, "unknown"),
  version numbers and counts are not negative, a version's base is older than it, and a
  content range ends after it starts. A count or version number already negative makes
  the upgrade fail (and roll back) naming the constraint: such a database was damaged.
- ``remotes.name`` is unique and not empty. Existing names are made so first: a name
  shared by several remotes stays with the oldest one (lowest id) and each other gets
  ``-<id>`` appended; an empty name becomes ``remote-<id>``.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

_remotes = sa.table("remotes", sa.column("id", sa.Integer), sa.column("name", sa.Text))


def _unique_remote_names(connection: sa.Connection) -> None:
    rows = connection.execute(sa.select(_remotes.c.id, _remotes.c.name).order_by(_remotes.c.id))
    remotes = [(int(pk), str(name)) for pk, name in rows]
    taken = {name for _pk, name in remotes}
    kept: set[str] = set()
    for pk, name in remotes:
        if name and name not in kept:
            kept.add(name)
            continue
        new_name = f"{name or 'remote'}-{pk}"
        while new_name in taken:
            new_name = f"{new_name}-{pk}"
        taken.add(new_name)
        kept.add(new_name)
        connection.execute(sa.update(_remotes).where(_remotes.c.id == pk).values(name=new_name))


def upgrade() -> None:
    """Drop artifacts.file; add the CHECK constraints and the unique remote name."""
    connection = op.get_bind()
    op.execute("UPDATE artifacts SET size = NULL WHERE size < 0")
    op.execute("UPDATE remote_artifacts SET size = NULL WHERE size < 0")
    _unique_remote_names(connection)
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_column("file")
        batch.create_check_constraint("ck_artifacts_size", "size >= 0")
    with op.batch_alter_table("remote_artifacts") as batch:
        batch.create_check_constraint("ck_remote_artifacts_size", "size >= 0")
    with op.batch_alter_table("remotes") as batch:
        batch.create_unique_constraint("uq_remotes_name", ["name"])
        batch.create_check_constraint("ck_remotes_name", "name <> ''")
    with op.batch_alter_table("repository_versions") as batch:
        batch.create_check_constraint("ck_repository_versions_number", "number >= 0")
        batch.create_check_constraint(
            "ck_repository_versions_base", "base_version >= 0 AND base_version < number"
        )
        batch.create_check_constraint(
            "ck_repository_versions_counts",
            "content_count >= 0 AND added_count >= 0 AND removed_count >= 0",
        )
    with op.batch_alter_table("repository_content") as batch:
        batch.create_check_constraint("ck_repository_content_added", "version_added >= 0")
        batch.create_check_constraint(
            "ck_repository_content_range", "version_removed > version_added"
        )
    op.execute("UPDATE stageline_meta SET value = '2' WHERE key = 'schema_version'")


def downgrade() -> None:
    """stageline never downgrades a schema: restore a backup made before the upgrade."""
    raise NotImplementedError("stageline does not downgrade schemas; restore a backup")
