"""Schema version 1 exactly as stageline created it before Alembic: a frozen copy of its DDL.

The statements are what ``metadata.create_all`` emitted for that release's tables on
each database (printed from its ``_schema.py``), so a test can build a database that an
older stageline made without relying on the baseline revision it checks.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["create_version_1"]

_SQLITE = [
    """CREATE TABLE artifacts (
    id INTEGER NOT NULL,
    sha256 VARCHAR(64) NOT NULL,
    size BIGINT,
    md5 VARCHAR(32),
    sha1 VARCHAR(40),
    sha224 VARCHAR(56),
    sha384 VARCHAR(96),
    sha512 VARCHAR(128),
    file TEXT,
    PRIMARY KEY (id),
    UNIQUE (sha256)
)""",
    """CREATE TABLE content (
    id INTEGER NOT NULL,
    type VARCHAR(255) NOT NULL,
    natural_key_digest VARCHAR(40) NOT NULL,
    natural_key TEXT NOT NULL,
    repo_key_digest VARCHAR(40),
    data TEXT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (natural_key_digest)
)""",
    """CREATE TABLE remotes (
    id INTEGER NOT NULL,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    settings TEXT NOT NULL,
    PRIMARY KEY (id)
)""",
    """CREATE TABLE repositories (
    id INTEGER NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (name)
)""",
    """CREATE TABLE stageline_meta (
    "key" VARCHAR(64) NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY ("key")
)""",
    """CREATE TABLE content_artifacts (
    id INTEGER NOT NULL,
    content_id INTEGER NOT NULL,
    artifact_id INTEGER,
    relative_path TEXT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (content_id, relative_path),
    FOREIGN KEY(content_id) REFERENCES content (id),
    FOREIGN KEY(artifact_id) REFERENCES artifacts (id)
)""",
    "CREATE INDEX ix_content_artifacts_artifact ON content_artifacts (artifact_id)",
    """CREATE TABLE repository_content (
    id INTEGER NOT NULL,
    repository_id INTEGER NOT NULL,
    content_id INTEGER NOT NULL,
    repo_key_digest VARCHAR(40),
    version_added INTEGER NOT NULL,
    version_removed INTEGER,
    PRIMARY KEY (id),
    FOREIGN KEY(repository_id) REFERENCES repositories (id),
    FOREIGN KEY(content_id) REFERENCES content (id)
)""",
    "CREATE INDEX ix_repository_content_added ON repository_content (repository_id, version_added)",
    "CREATE INDEX ix_repository_content_content ON repository_content (repository_id, content_id)",
    "CREATE INDEX ix_repository_content_removed ON repository_content "
    "(repository_id, version_removed)",
    "CREATE INDEX ix_repository_content_repo_key ON repository_content "
    "(repository_id, repo_key_digest) WHERE repo_key_digest IS NOT NULL",
    """CREATE TABLE repository_versions (
    id INTEGER NOT NULL,
    repository_id INTEGER NOT NULL,
    number INTEGER NOT NULL,
    base_version INTEGER,
    complete BOOLEAN NOT NULL,
    content_count BIGINT NOT NULL,
    added_count BIGINT NOT NULL,
    removed_count BIGINT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (repository_id, number),
    FOREIGN KEY(repository_id) REFERENCES repositories (id)
)""",
    """CREATE TABLE remote_artifacts (
    id INTEGER NOT NULL,
    content_artifact_id INTEGER NOT NULL,
    remote_id INTEGER NOT NULL,
    url TEXT NOT NULL,
    size BIGINT,
    md5 VARCHAR(32),
    sha1 VARCHAR(40),
    sha224 VARCHAR(56),
    sha256 VARCHAR(64),
    sha384 VARCHAR(96),
    sha512 VARCHAR(128),
    PRIMARY KEY (id),
    UNIQUE (content_artifact_id, remote_id),
    FOREIGN KEY(content_artifact_id) REFERENCES content_artifacts (id),
    FOREIGN KEY(remote_id) REFERENCES remotes (id)
)""",
]

_POSTGRESQL = [
    """CREATE TABLE artifacts (
    id BIGSERIAL NOT NULL,
    sha256 VARCHAR(64) NOT NULL,
    size BIGINT,
    md5 VARCHAR(32),
    sha1 VARCHAR(40),
    sha224 VARCHAR(56),
    sha384 VARCHAR(96),
    sha512 VARCHAR(128),
    file TEXT,
    PRIMARY KEY (id),
    UNIQUE (sha256)
)""",
    """CREATE TABLE content (
    id BIGSERIAL NOT NULL,
    type VARCHAR(255) NOT NULL,
    natural_key_digest VARCHAR(40) NOT NULL,
    natural_key TEXT NOT NULL,
    repo_key_digest VARCHAR(40),
    data TEXT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (natural_key_digest)
)""",
    """CREATE TABLE remotes (
    id BIGSERIAL NOT NULL,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    settings TEXT NOT NULL,
    PRIMARY KEY (id)
)""",
    """CREATE TABLE repositories (
    id BIGSERIAL NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (name)
)""",
    """CREATE TABLE stageline_meta (
    key VARCHAR(64) NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (key)
)""",
    """CREATE TABLE content_artifacts (
    id BIGSERIAL NOT NULL,
    content_id BIGINT NOT NULL,
    artifact_id BIGINT,
    relative_path TEXT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (content_id, relative_path),
    FOREIGN KEY(content_id) REFERENCES content (id),
    FOREIGN KEY(artifact_id) REFERENCES artifacts (id)
)""",
    "CREATE INDEX ix_content_artifacts_artifact ON content_artifacts (artifact_id)",
    """CREATE TABLE repository_content (
    id BIGSERIAL NOT NULL,
    repository_id BIGINT NOT NULL,
    content_id BIGINT NOT NULL,
    repo_key_digest VARCHAR(40),
    version_added INTEGER NOT NULL,
    version_removed INTEGER,
    PRIMARY KEY (id),
    FOREIGN KEY(repository_id) REFERENCES repositories (id),
    FOREIGN KEY(content_id) REFERENCES content (id)
)""",
    "CREATE INDEX ix_repository_content_added ON repository_content (repository_id, version_added)",
    "CREATE INDEX ix_repository_content_content ON repository_content (repository_id, content_id)",
    "CREATE INDEX ix_repository_content_removed ON repository_content "
    "(repository_id, version_removed)",
    "CREATE INDEX ix_repository_content_repo_key ON repository_content "
    "(repository_id, repo_key_digest) WHERE repo_key_digest IS NOT NULL",
    """CREATE TABLE repository_versions (
    id BIGSERIAL NOT NULL,
    repository_id BIGINT NOT NULL,
    number INTEGER NOT NULL,
    base_version INTEGER,
    complete BOOLEAN NOT NULL,
    content_count BIGINT NOT NULL,
    added_count BIGINT NOT NULL,
    removed_count BIGINT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (repository_id, number),
    FOREIGN KEY(repository_id) REFERENCES repositories (id)
)""",
    """CREATE TABLE remote_artifacts (
    id BIGSERIAL NOT NULL,
    content_artifact_id BIGINT NOT NULL,
    remote_id BIGINT NOT NULL,
    url TEXT NOT NULL,
    size BIGINT,
    md5 VARCHAR(32),
    sha1 VARCHAR(40),
    sha224 VARCHAR(56),
    sha256 VARCHAR(64),
    sha384 VARCHAR(96),
    sha512 VARCHAR(128),
    PRIMARY KEY (id),
    UNIQUE (content_artifact_id, remote_id),
    FOREIGN KEY(content_artifact_id) REFERENCES content_artifacts (id),
    FOREIGN KEY(remote_id) REFERENCES remotes (id)
)""",
]


def create_version_1(conn: sa.Connection) -> None:
    """Create the version-1 tables on ``conn`` and record schema version 1, as it did."""
    statements = _POSTGRESQL if conn.dialect.name == "postgresql" else _SQLITE
    for statement in statements:
        conn.exec_driver_sql(statement)
    conn.exec_driver_sql("INSERT INTO stageline_meta (key, value) VALUES ('schema_version', '1')")
