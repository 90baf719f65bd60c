"""PostgreSQL store (placeholder docstring)."""

from ._store import PostgresStore as PostgresStore

__all__ = ["PostgresStore"]
