"""The Alembic environment of stageline's schema: run on the connection the store hands in.

The store (``stageline.store._migrate``) passes everything through
``config.attributes``: the open connection (inside the transaction that holds the
migration lock), the head schema, and the name of the revision table. Nothing is read
from an ini file, and no engine is made here.
"""

from __future__ import annotations

from alembic import context

_attributes = context.config.attributes
context.configure(
    connection=_attributes["connection"],
    target_metadata=_attributes["target_metadata"],
    version_table=_attributes["version_table"],
    # SQLite can add no constraint and drop no constrained column in place: batch
    # operations copy the table instead (a no-op wrapper on PostgreSQL).
    render_as_batch=True,
)
# The connection is already in the store's transaction: this is then a no-op, so every
# revision runs, and commits, in that one transaction.
with context.begin_transaction():
    context.run_migrations()
