"""Least-privilege roles (``examples/postgres_roles.sql``, docs: Security), on the test server.

The roles and the schema get names of their own per test (created here,
dropped afterwards). The owner migrates; the producer role can enqueue, read
results (waiting for them too), cancel and retry, and nothing more; only the
worker role can claim and record; neither needs DDL after the migration.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import psycopg
import pytest
import trio
from psycopg.conninfo import make_conninfo

from omniq_trio import AsyncOmniQ, Call, Settings, TaskStatus
from omniq_trio._clock import DEFAULT_CLOCK
from omniq_trio.errors import StoreError
from omniq_trio.store import Outcome
from omniq_trio.store._postgres import PostgresStore, _schema
from omniq_trio.store._postgres._wire import PgConnection
from tests.conftest import ROOT, requires_postgres

pytestmark = requires_postgres

SCRIPT = (ROOT / "examples" / "postgres_roles.sql").read_text()
PATIENCE = 30.0
DENIED = "permission denied"


def _section(name: str) -> str:
    match = re.search(
        rf"\[start:{name}\][^\n]*\n(.*?)\n[^\n]*\[end:{name}\]", SCRIPT, flags=re.DOTALL
    )
    assert match, name
    return match.group(1)


@attrs.frozen
class Roles:
    """The three roles of the script, and the schema, under this test's names."""

    admin_dsn: str
    schema: str
    owner: str
    producer: str
    worker: str

    def dsn(self, role: str) -> str:
        return make_conninfo(self.admin_dsn, user=role)

    def sql(self, role: str, text: str) -> list[tuple[object, ...]]:
        with psycopg.connect(self.dsn(role), autocommit=True) as conn:
            cur = conn.execute(text.encode())  # bytes: run as written, no placeholders
            return cur.fetchall() if cur.description else []

    def named(self, text: str) -> str:
        """``text`` (of the script) with this test's names in place of the script's."""
        for generic, mine in [
            ("omniq_owner", self.owner),
            ("omniq_producer", self.producer),
            ("omniq_worker", self.worker),
            ("omniq", self.schema),
        ]:
            text = re.sub(rf"\b{generic}\b", mine, text)
        return text

    def settings(self, role: str, **changes: Any) -> Settings:
        return Settings(
            backend="postgres", dsn=self.dsn(role), postgres_schema=self.schema, **changes
        )


@pytest.fixture
def roles(dsn: str) -> Iterator[Roles]:
    tag = secrets.token_hex(4)
    roles = Roles(
        dsn,
        f"test_roles_{tag}",
        f"test_owner_{tag}",
        f"test_producer_{tag}",
        f"test_worker_{tag}",
    )
    roles.sql("postgres", roles.named(_section("roles")))
    try:
        yield roles
    finally:
        roles.sql("postgres", f'DROP SCHEMA IF EXISTS "{roles.schema}" CASCADE')
        for name in (roles.worker, roles.producer, roles.owner):
            if roles.sql("postgres", f"SELECT 1 FROM pg_roles WHERE rolname = '{name}'"):
                roles.sql("postgres", f'DROP OWNED BY "{name}"; DROP ROLE "{name}"')


async def _migrated(roles: Roles) -> None:
    """As the owner: ``omniq-trio migrate`` (opening a store does the same), then the grants."""
    async with PostgresStore(roles.dsn(roles.owner), schema=roles.schema):
        pass
    roles.sql(roles.owner, roles.named(_section("grants")))


def add(a: int, b: int) -> int:
    return a + b


def fail() -> None:
    raise ValueError("fails on purpose")


async def _until_awaited(roles: Roles, task_id: str) -> None:
    query = f"SELECT awaited FROM \"{roles.schema}\".tasks WHERE id = '{task_id}'"
    for _ in range(int(PATIENCE / 0.01)):
        if roles.sql("postgres", query) == [(True,)]:
            return
        await trio.sleep(0.01)
    raise AssertionError(f"{task_id} was never marked awaited")


@asynccontextmanager
async def _working(omniq: AsyncOmniQ) -> AsyncIterator[None]:
    async with trio.open_nursery() as nursery:
        pool = omniq.worker(poll_interval=0.05)
        await nursery.start(pool.run)
        yield
        await pool.stop()


async def test_the_producer_enqueues_waits_cancels_and_retries(roles: Roles) -> None:
    await _migrated(roles)
    with trio.fail_after(PATIENCE):
        async with (
            AsyncOmniQ(roles.settings(roles.producer)) as producer,
            AsyncOmniQ(roles.settings(roles.worker, sync_tasks="inline")) as worker,
        ):
            added, failing, cancelled = await producer.enqueue_many(
                [Call(add, (2, 3)), Call(fail), Call(add, (0, 0), delay=3600)]
            )
            assert await producer.cancel(cancelled)
            assert await producer.get_result(added) is None
            async with trio.open_nursery() as nursery:

                async def wait_for_result() -> None:
                    result = await producer.get_result(added, wait=True)
                    assert result is not None
                    assert (result.status, result.value) == (TaskStatus.SUCCESS, 5)

                nursery.start_soon(wait_for_result)
                # the producer marks the task awaited (its one UPDATE), then LISTENs
                await _until_awaited(roles, added)
                async with _working(worker):
                    failed = await producer.get_result(failing, wait=True)
            assert failed is not None and failed.status is TaskStatus.FAILED
            await producer.retry(failing)
            assert (await producer.get_task(failing)).status is TaskStatus.PENDING
            assert (await producer.get_task(cancelled)).status is TaskStatus.CANCELLED
            assert (await producer.stats()).counts[TaskStatus.SUCCESS] == 1
            assert len(await producer.list_tasks()) == 3


async def test_only_the_worker_claims_and_records(roles: Roles) -> None:
    await _migrated(roles)
    now = DEFAULT_CLOCK.now() + 1.0
    async with (
        PostgresStore(roles.dsn(roles.producer), schema=roles.schema) as producer,
        PostgresStore(roles.dsn(roles.worker), schema=roles.schema) as worker,
    ):
        async with AsyncOmniQ(roles.settings(roles.producer), store=producer) as omniq:
            task_id = await omniq.enqueue(add, 1, 2)
        done = Outcome.success(task_id, "w", now, 3)
        refusals: list[Callable[[], Awaitable[object]]] = [
            partial(producer.claim, "w", now=now, limit=1, lease_until=now + 30),
            partial(producer.record, [done]),
            partial(producer.release, [task_id], worker_id="w"),
            partial(producer.renew, "w", lease_until=now + 30),
            partial(producer.purge, finished_before=math.inf, failed_before=math.inf),
        ]
        for refused in refusals:
            with pytest.raises(StoreError, match=DENIED):
                await refused()
        (claimed,) = await worker.claim("w", now=now, limit=1, lease_until=now + 30)
        assert claimed.id == task_id
        # (with no lease expired, reclaiming reads and changes nothing)
        with pytest.raises(StoreError, match=DENIED):
            await producer.reclaim_expired(now=now + 60)
        assert await worker.record([done]) == [None]
        assert await worker.purge(finished_before=math.inf, failed_before=math.inf) == 1
    schema = f'"{roles.schema}"'
    for role, statement in [
        (roles.producer, f"UPDATE {schema}.tasks SET status = 'running'"),
        (roles.producer, f"UPDATE {schema}.tasks SET func = 'os:system'"),
        (roles.producer, f"DELETE FROM {schema}.tasks"),
        (roles.producer, f"CREATE TABLE {schema}.mine (x int)"),
        (roles.worker, f"CREATE TABLE {schema}.mine (x int)"),
        (roles.worker, f"ALTER TABLE {schema}.tasks ADD COLUMN x int"),
        (roles.worker, f"DROP TABLE {schema}.tasks"),
        (roles.worker, f"INSERT INTO {schema}.schema_version (version) VALUES (999)"),
    ]:
        with pytest.raises(psycopg.Error, match=f"{DENIED}|must be owner"):
            roles.sql(role, statement)


async def test_a_role_that_may_not_migrate_is_told_who_can(roles: Roles) -> None:
    with pytest.raises(StoreError, match=r"run `omniq-trio migrate` as the schema's owner"):
        async with PostgresStore(roles.dsn(roles.producer), schema=roles.schema):
            pass


async def test_an_older_schema_gets_the_functions(
    roles: Roles, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the schema as the first release left it, with a task in it
    with monkeypatch.context() as old:
        old.setattr(_schema, "MIGRATIONS", _schema.MIGRATIONS[:1])
        old.setattr(_schema, "SCHEMA_VERSION", 1)
        conn = await PgConnection.connect(roles.dsn(roles.owner))
        try:
            await _schema.migrate(conn, roles.schema)
        finally:
            conn.close()
    roles.sql(
        roles.owner,
        f'INSERT INTO "{roles.schema}".tasks (id, func, args, kwargs, status, priority, eta, '
        "max_retries, retry_on_timeout, attempts, created_at) VALUES "
        "('old', 'tests.postgres.test_roles:add', '[1, 1]', '{}', 'pending', 0, 0, 0, false, 0, 0)",
    )
    assert _versions(roles) == [1]
    await _migrated(roles)  # the upgrade
    assert _versions(roles) == list(range(1, _schema.SCHEMA_VERSION + 1))
    async with AsyncOmniQ(roles.settings(roles.producer)) as producer:
        assert await producer.cancel("old")
        assert (await producer.get_task("old")).status is TaskStatus.CANCELLED


def _versions(roles: Roles) -> list[object]:
    rows = roles.sql("postgres", f'SELECT version FROM "{roles.schema}".schema_version ORDER BY 1')
    return [version for (version,) in rows]
