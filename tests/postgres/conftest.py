"""Fixtures of the PostgreSQL tests: a fresh schema per test, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from ..conftest import POSTGRES_DSN


@pytest.fixture
def dsn() -> str:
    assert POSTGRES_DSN
    return POSTGRES_DSN


@pytest.fixture
def schema(dsn: str) -> Iterator[str]:
    import psycopg

    name = f"test_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def terminate(dsn: str, application_name: str) -> int:
    """``pg_terminate_backend`` every session named ``application_name``; how many."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            [application_name],
        ).fetchall()
    return len(rows)


def with_application_name(dsn: str, name: str) -> str:
    """``dsn`` whose sessions show as ``name`` (to find and terminate them)."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn, application_name=name)
