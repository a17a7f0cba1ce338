"""Alembic revision scripts, oldest first; Alembic loads them by file, not by import."""
