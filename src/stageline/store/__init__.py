"""The store: models persisted with SQLAlchemy Core on SQLite or PostgreSQL.

Open one with :func:`open_store`; build repository versions with
:meth:`Store.new_version`. See ``docs/store.md``.
"""

from ._locator import ArtifactLocator
from ._repositories import Change
from ._schema import SCHEMA_VERSION
from ._store import Store, open_store
from ._version import NewVersion

__all__ = ["SCHEMA_VERSION", "ArtifactLocator", "Change", "NewVersion", "Store", "open_store"]
