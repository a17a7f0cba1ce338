"""stageline's schema migrations: an Alembic environment run by the store itself.

``env.py`` and ``versions/`` are read by Alembic, not imported as a package: the store
drives them from :mod:`stageline.store._migrate` on the connection that opens the
database, so users need neither ``alembic.ini`` nor the ``alembic`` command. See the
"Schema migrations" section of ``docs/store.md`` for how to add a revision.
"""
