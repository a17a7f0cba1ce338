"""Creating, recognising and upgrading the schema with Alembic: once, under a lock.

The revisions live in ``_migrations/versions/`` inside the package; the store runs them
itself, on the connection that opens the database, so users need no ``alembic.ini``.
The revision table is ``stageline_alembic_version`` rather than Alembic's default
``alembic_version``, so that a plugin or an application keeping its own Alembic history
in the same database or schema never meets stageline's.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from .._exceptions import SchemaVersionError
from ._engine import WRITE_OPTION
from ._schema import SCHEMA_VERSION, create_code_point_path_index, metadata

__all__ = ["BASELINE_REVISION", "HEAD_REVISION", "VERSION_TABLE", "ensure_schema", "upgrade_to"]

#: The table where Alembic records the database's revision.
VERSION_TABLE = "stageline_alembic_version"

#: The revision of schema version 1, the schema stageline made before it used Alembic.
BASELINE_REVISION = "0001"

#: The newest revision this stageline knows: schema version n is revision "000n".
HEAD_REVISION = f"{SCHEMA_VERSION:04d}"

_MIGRATIONS = Path(__file__).with_name("_migrations")
_META = metadata.tables["stageline_meta"]
_OUR_TABLES = frozenset(metadata.tables) | {VERSION_TABLE}
# Alembic runs a command through module-level proxies (``alembic.context``, ``alembic.op``)
# that one command at a time may install: two stores of one process creating or upgrading
# their databases at once (in two worker threads) handed each other's connection to the
# revisions. Commands therefore run one at a time per process. A command only touches the
# database whose lock its thread already holds, so this never waits on another database.
_ALEMBIC_COMMAND = threading.Lock()
# Any fixed number: the transaction-level advisory lock that makes PostgreSQL opens
# create or upgrade the schema one at a time.
_POSTGRESQL_LOCK = 1398041697


def _config(conn: sa.Connection) -> Config:
    """An Alembic configuration that runs ``_migrations/env.py`` on ``conn``."""
    config = Config(
        attributes={
            "connection": conn,
            "target_metadata": metadata,
            "version_table": VERSION_TABLE,
        }
    )
    # The ini syntax behind set_main_option treats "%" as interpolation.
    config.set_main_option("script_location", str(_MIGRATIONS).replace("%", "%%"))
    return config


def _known_revisions(conn: sa.Connection) -> set[str]:
    script = ScriptDirectory.from_config(_config(conn))
    return {script_revision.revision for script_revision in script.walk_revisions()}


def upgrade_to(conn: sa.Connection, revision: str) -> None:
    """Run the revisions that bring the database on ``conn`` to ``revision``.

    ``conn`` must be in a transaction, which the revisions run in (nothing is
    committed here). For the store's open and for tests that build an older schema.
    """
    with _ALEMBIC_COMMAND:
        command.upgrade(_config(conn), revision)


def _stamp(conn: sa.Connection, revision: str) -> None:
    with _ALEMBIC_COMMAND:
        command.stamp(_config(conn), revision)


def _recorded_version(conn: sa.Connection) -> int:
    raw = conn.execute(sa.select(_META.c.value).where(_META.c.key == "schema_version")).scalar()
    try:
        found = int(raw) if raw is not None else -1
    except ValueError:
        found = -1
    if found < 0:
        raise SchemaVersionError(
            f"the database's stageline_meta table records no valid schema version ({raw!r}); "
            "it was damaged or not created by stageline; point stageline at an empty database"
        )
    return found


def _current_revision(conn: sa.Connection, names: set[str]) -> str:
    """The database's revision; a schema-version-1 database without one is the baseline."""
    recorded = _recorded_version(conn)
    if VERSION_TABLE not in names:
        if recorded == 1:
            # Made by a stageline from before Alembic: exactly the baseline revision.
            _stamp(conn, BASELINE_REVISION)
            return BASELINE_REVISION
        raise SchemaVersionError(
            f"the database records schema version {recorded} but no schema revision (no "
            f"{VERSION_TABLE} table), which no stageline release makes (this one uses "
            f"version {SCHEMA_VERSION}, revision {HEAD_REVISION}); it was damaged: restore a "
            "backup, or point stageline at an empty database"
        )
    # Read directly rather than through Alembic's MigrationContext, which logs two lines at
    # INFO each time it is made: an operator's log would repeat them on every open.
    heads = [
        str(revision)
        for (revision,) in conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}")
    ]
    if len(heads) != 1:
        raise SchemaVersionError(
            f"the database's {VERSION_TABLE} table holds {len(heads)} revisions "
            f"({', '.join(heads) or 'none'}), not one; it was damaged: restore a backup, or "
            f"point stageline at an empty database (this stageline uses revision "
            f"{HEAD_REVISION})"
        )
    return heads[0]


def _create(conn: sa.Connection, names: set[str]) -> None:
    clash = sorted(names & _OUR_TABLES)
    if clash:
        raise SchemaVersionError(
            f"the database already has tables named {clash!r} but no stageline schema "
            "version record, so it was not created by stageline (or was damaged); point "
            "stageline at an empty database or schema"
        )
    metadata.create_all(conn)
    create_code_point_path_index(conn)
    conn.execute(sa.insert(_META).values(key="schema_version", value=str(SCHEMA_VERSION)))
    _stamp(conn, HEAD_REVISION)


def _check_foreign_keys(conn: sa.Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise SchemaVersionError(
            f"upgrading the schema to revision {HEAD_REVISION} left {len(broken)} rows "
            f"referring to rows that do not exist (first: {tuple(broken[0])!r}); nothing was "
            "changed; report this as a stageline bug"
        )


def _ensure(conn: sa.Connection) -> bool:
    """Create, check or upgrade the schema; True when revisions ran."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_POSTGRESQL_LOCK})"))
    names = set(sa.inspect(conn).get_table_names())
    if _META.name not in names:
        _create(conn, names)
        return False
    current = _current_revision(conn, names)
    if current == HEAD_REVISION:
        return False
    if current not in _known_revisions(conn):
        raise SchemaVersionError(
            f"the database is at schema revision {current}, which this stageline does not "
            f"know (its newest is revision {HEAD_REVISION}, schema version {SCHEMA_VERSION}): "
            "a newer stageline upgraded it; upgrade stageline to that release, or use "
            "another database"
        )
    upgrade_to(conn, HEAD_REVISION)
    return True


def _sqlite_foreign_keys_off(conn: sa.Connection) -> None:
    # On the driver's connection, outside any transaction: the pragma is a no-op inside one.
    driver: Any = conn.connection.driver_connection
    driver.execute("PRAGMA foreign_keys=OFF")


def ensure_schema(engine: sa.Engine) -> None:
    """Create the tables on first use, or upgrade an older schema; blocking.

    Runs in one write transaction that holds the migration lock (a PostgreSQL
    transaction-level advisory lock; SQLite's write lock, taken by ``BEGIN IMMEDIATE``),
    so two processes opening a new or an old database at once create or upgrade it once:
    the second finds the work done. Revisions commit together with the transaction, or
    not at all.

    On SQLite the revisions rebuild tables (SQLite cannot add a constraint in place), so
    foreign keys are off on this connection for the transaction, as SQLite's documented
    procedure for schema changes says, and checked before it commits; the connection is
    then discarded, never handed back to the pool without them.

    Raises:
        SchemaVersionError: the database was made or upgraded by a newer stageline, holds
            tables named like stageline's without a version record, or records a version
            no revision starts from.
        sqlalchemy.exc.SQLAlchemyError: the database failed (the store translates it).
    """
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        try:
            if sqlite:
                _sqlite_foreign_keys_off(conn)
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                upgraded = _ensure(conn)
                if sqlite and upgraded:
                    _check_foreign_keys(conn)
        finally:
            if sqlite:
                conn.invalidate()
