"""The store: models persisted with SQLAlchemy Core on SQLite or PostgreSQL.

Open one with :func:`open_store`; group calls in one transaction with
:meth:`Store.unit_of_work`; build repository versions with :meth:`Store.new_version`. See
``docs/store.md``.
"""

from ._content import ContentFile
from ._home import HOME_ENV, create_home, default_database_path, default_home
from ._locator import ArtifactLocator
from ._ranges import Change
from ._remotes import RemoteArtifactEntry
from ._schema import SCHEMA_VERSION
from ._store import Store, open_store
from ._unit_of_work import UnitOfWork
from ._version import NewVersion

__all__ = [
    "HOME_ENV",
    "SCHEMA_VERSION",
    "ArtifactLocator",
    "Change",
    "ContentFile",
    "NewVersion",
    "RemoteArtifactEntry",
    "Store",
    "UnitOfWork",
    "create_home",
    "default_database_path",
    "default_home",
    "open_store",
]
