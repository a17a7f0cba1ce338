"""Running a sync: :class:`DeclarativeVersion` and the :class:`Workspace` it syncs into.

``DeclarativeVersion(first_stage, repository).create()`` runs a first stage and the
default stages (:mod:`stageline.stages`) into a new repository version; a
:class:`Workspace` says where the store and the artifact storage are and how downloads
are made. See ``docs/plugin-writing.md``.
"""

from ._declarative_version import DEFAULT_LOCK_TIMEOUT, Backend, DeclarativeVersion
from ._workspace import HOME_ENV, Workspace

__all__ = ["DEFAULT_LOCK_TIMEOUT", "HOME_ENV", "Backend", "DeclarativeVersion", "Workspace"]
