"""What the PostgreSQL store does beyond the shared contract: schema upgrades,
exact values, atomicity under cancellation, lost connections, LISTEN/NOTIFY,
batched purges and the indexes behind a fast claim.

These run against a real server but never sleep: they wait for I/O only.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
import trio
import trio.testing

from omniq_trio.errors import StoreError
from omniq_trio.models import Task, TaskError, TaskStatus
from omniq_trio.store import Change, DuplicateTaskError, Outcome
from omniq_trio.store._postgres import PostgresStore, _schema, _wire
from omniq_trio.store._postgres._schema import SCHEMA_VERSION
from omniq_trio.testing import T0, make_task

from ..conftest import requires_postgres
from .conftest import terminate, with_application_name

pytestmark = requires_postgres

#: Long enough that a wait which should be cut short by a notification
#: visibly was (the test would hang this long and then fail, not pass).
FAR = 30.0
BOOM = TaskError("builtins.ValueError", "boom")


def sql(dsn: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query)
        return cur.fetchall() if cur.description else []


async def test_schema_is_created_versioned_and_guarded(dsn: str, schema: str) -> None:
    async with PostgresStore(dsn, schema=schema):
        pass
    async with PostgresStore(dsn, schema=schema):  # opening again: nothing to do
        pass
    assert sql(dsn, f'SELECT max(version) FROM "{schema}".schema_version') == [(SCHEMA_VERSION,)]
    sql(dsn, f'INSERT INTO "{schema}".schema_version (version) VALUES (999)')
    with pytest.raises(StoreError, match="upgrade omniq_trio"):
        async with PostgresStore(dsn, schema=schema):
            pass


async def test_an_upgraded_schema_keeps_its_tasks_and_counts_them(
    dsn: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, done = make_task(), make_task()
    with monkeypatch.context() as m:  # the schema as omniq_trio 0.1 (+ migration 2) left it
        m.setattr(_schema, "MIGRATIONS", _schema.MIGRATIONS[:2])
        m.setattr(_schema, "SCHEMA_VERSION", 2)
        conn = await _wire.PgConnection.connect(dsn)
        try:
            await _schema.migrate(conn, schema)
        finally:
            conn.close()
    for task, status, finished_at in ((old, "pending", "NULL"), (done, "success", T0)):
        sql(
            dsn,
            f'INSERT INTO "{schema}".tasks (id, func, args, kwargs, status, priority, eta, '
            "max_retries, retry_on_timeout, attempts, created_at, finished_at) VALUES "
            f"('{task.id}', '{task.func}', '[]', '{{}}', '{status}', 0, {T0}, 0, false, 0, "
            f"{T0}, {finished_at})",
        )
    async with PostgresStore(dsn, schema=schema) as store:
        assert await store.get_task(old.id) == old  # the new fields take their defaults
        stats = await store.stats(now=T0)
        assert (stats.counts[TaskStatus.PENDING], stats.counts[TaskStatus.SUCCESS]) == (1, 1)
        assert stats.queues["default"][TaskStatus.PENDING] == 1
        assert [t.id for t in await store.claim("w", now=T0, limit=5, lease_until=T0 + 30)] == [
            old.id
        ]


@contextlib.asynccontextmanager
async def woken(store: PostgresStore, change: Change) -> AsyncIterator[None]:
    """Around code that should wake ``store``'s waiters for ``change``: a waiter is
    listening while it runs, and its change version has moved when it is done."""
    # the first wait connects the listener, and returns: something may have
    # happened before it listened
    await store.wait_for_change(change, store.change_version(change), trio.current_time() + FAR)
    seen = store.change_version(change)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.wait_for_change, change, seen, trio.current_time() + FAR)
        await trio.testing.wait_all_tasks_blocked()
        yield
    assert store.change_version(change) != seen


async def test_a_running_task_cancelled_elsewhere_wakes_its_worker(dsn: str, schema: str) -> None:
    task = make_task()
    async with PostgresStore(dsn, schema=schema) as a, PostgresStore(dsn, schema=schema) as b:
        await a.enqueue([task])
        await b.claim("w", now=T0, limit=1, lease_until=T0 + 30)
        async with woken(b, Change.CANCELLED):
            assert await a.cancel(task.id, at=T0 + 1)
        assert await b.renew("w", lease_until=T0 + 60) == frozenset()


async def test_values_and_times_round_trip_exactly(dsn: str, schema: str) -> None:
    args = (0.1, 1e16, -0.0, 5e-324, 1.7976931348623157e308, 2**63 - 1, -(2**63), "\x00 ✓ \"'\\")
    kwargs = {"z": {"b": 1, "a": [1.0, 1]}, "a": None, "{}": "[,]"}
    task = make_task(args=args, kwargs=kwargs, eta=T0 + 1e-6, created_at=T0 + 0.123456789)
    async with PostgresStore(dsn, schema=schema) as store:
        await store.enqueue([task])
        got = await store.get_task(task.id)
        assert got == task
        assert list(got.kwargs) == ["z", "a", "{}"]  # key order kept, as json (not jsonb) does
        assert [type(a) for a in got.args] == [type(a) for a in args]
        await store.claim("w", now=T0 + 0.5, limit=1, lease_until=T0 + 30.25)
        value = {"b": [1e16, 0.1], "a": "Zoë"}
        await store.complete(task.id, worker_id="w", value=value, at=T0 + 1.000001)
        result = await store.get_result(task.id)
        assert result is not None
        assert (result.value, list(result.value)) == (value, ["b", "a"])
        assert (result.started_at, result.finished_at) == (T0 + 0.5, T0 + 1.000001)


async def test_a_change_cancelled_in_flight_still_completes(dsn: str, schema: str) -> None:
    task = make_task()
    returned = False
    async with PostgresStore(dsn, schema=schema) as store:

        async def enqueue() -> None:
            nonlocal returned
            await store.enqueue([task])
            returned = True  # the call finished despite the cancellation
            await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(enqueue)
            await trio.testing.wait_all_tasks_blocked()  # its round trip is in flight
            nursery.cancel_scope.cancel()
        assert returned
        assert await store.get_task(task.id) == task
        # and the connection went back clean: the next call on it works
        assert [t.id for t in (await store.list_tasks()).tasks] == [task.id]


async def test_a_change_cancelled_before_it_is_sent_changes_nothing(dsn: str, schema: str) -> None:
    task = make_task()
    async with PostgresStore(dsn, schema=schema) as store:
        with trio.CancelScope() as scope:
            scope.cancel()
            await store.enqueue([task])
        assert scope.cancelled_caught
        assert (await store.list_tasks()).tasks == []


async def test_changes_made_together_share_a_transaction_but_not_errors(
    dsn: str, schema: str
) -> None:
    first, second, other = make_task(), make_task(), make_task()
    async with PostgresStore(dsn, schema=schema) as store:
        await store.enqueue([first])
        errors: list[Exception] = []

        async def enqueue(tasks: list[Task]) -> None:
            try:
                await store.enqueue(tasks)
            except DuplicateTaskError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(enqueue, [second])
            nursery.start_soon(enqueue, [first])  # a duplicate: refused on its own
            nursery.start_soon(enqueue, [other])
        assert [type(e).__name__ for e in errors] == ["DuplicateTaskError"]
        assert {t.id for t in (await store.list_tasks()).tasks} == {first.id, second.id, other.id}


async def test_a_lost_connection_fails_one_call_then_reconnects(dsn: str, schema: str) -> None:
    name = f"omniq_test_{uuid.uuid4().hex[:8]}"
    async with PostgresStore(with_application_name(dsn, name), schema=schema) as store:
        await store.enqueue([make_task()])
        assert terminate(dsn, name) >= 1
        with pytest.raises(StoreError, match="lost the connection"):
            await store.list_tasks()
        assert len((await store.list_tasks()).tasks) == 1


async def test_a_claim_whose_reply_is_lost_is_released(
    dsn: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = make_task()
    async with PostgresStore(dsn, schema=schema) as store:
        await store.enqueue([task])
        real_run = _wire.PgConnection.run

        async def run_then_lose_reply(
            self: _wire.PgConnection, calls: list[_wire.Call]
        ) -> list[_wire.Reply]:
            replies = await real_run(self, calls)  # committed ...
            if any(statement.name.startswith(b"omniq_claim") for statement, _ in calls):
                self.close()  # ... but the reply never arrives
                raise _wire.ConnectionLostError("connection cut")
            return replies

        monkeypatch.setattr(_wire.PgConnection, "run", run_then_lose_reply)
        with pytest.raises(StoreError):
            await store.claim("w1", now=T0, limit=1, lease_until=T0 + 30)
        monkeypatch.undo()
        assert (await store.get_task(task.id)).worker_id == "w1"  # taken, unknown to w1
        # the next claim first releases what the lost one took
        (claimed,) = await store.claim("w2", now=T0 + 1, limit=1, lease_until=T0 + 31)
        assert (claimed.id, claimed.worker_id) == (task.id, "w2")


async def test_work_in_one_store_wakes_a_waiter_on_another(dsn: str, schema: str) -> None:
    a, b = PostgresStore(dsn, schema=schema), PostgresStore(dsn, schema=schema)
    async with a, b, woken(b, Change.WORK):
        await a.enqueue([make_task()])


async def test_an_awaited_result_is_announced_when_it_is_stored(dsn: str, schema: str) -> None:
    early, late = make_task(), make_task()
    async with PostgresStore(dsn, schema=schema) as a, PostgresStore(dsn, schema=schema) as b:
        await a.enqueue([early, late])
        await a.claim("w", now=T0, limit=2, lease_until=T0 + 30)
        await b.wait_for_change(
            Change.FINISHED, b.change_version(Change.FINISHED), trio.current_time() + FAR
        )

        # finishes after the waiter looked: a notification wakes it
        seen = b.change_version(Change.FINISHED)
        assert await b.get_result(late.id) is None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(b.wait_for_change, Change.FINISHED, seen, trio.current_time() + FAR)
            await trio.testing.wait_all_tasks_blocked()
            await a.complete(late.id, worker_id="w", value=2, at=T0 + 1)
        assert b.change_version(Change.FINISHED) != seen

        # finishes between the look and the wait: the wait sees it at once
        seen = b.change_version(Change.FINISHED)
        assert await b.get_result(early.id) is None
        await a.record([Outcome.success(early.id, "w", T0 + 1, 1)])
        await b.wait_for_change(Change.FINISHED, seen, trio.current_time() + FAR)
        assert b.change_version(Change.FINISHED) != seen


async def test_waiting_survives_a_lost_listening_connection(dsn: str, schema: str) -> None:
    name = f"omniq_test_{uuid.uuid4().hex[:8]}"
    async with PostgresStore(with_application_name(dsn, name), schema=schema) as store:
        seen = store.change_version(Change.WORK)
        await store.wait_for_change(Change.WORK, seen, trio.current_time() + FAR)
        terminate(dsn, name)
        # the dead listener is noticed and the wait falls back to its deadline
        seen = store.change_version(Change.WORK)
        await store.wait_for_change(Change.WORK, seen, trio.current_time() + 0.2)
        with pytest.raises(StoreError):  # its other connection was terminated too
            await store.enqueue([make_task()])
        await store.enqueue([make_task()])


async def test_purge_deletes_in_batches(dsn: str, schema: str) -> None:
    tasks = [make_task() for _ in range(2_500)]
    async with PostgresStore(dsn, schema=schema) as store:
        await store.enqueue(tasks)
        await store.claim("w", now=T0, limit=len(tasks), lease_until=T0 + 30)
        outcomes = [Outcome.success(t.id, "w", T0 + 1 + i / 10_000, i) for i, t in enumerate(tasks)]
        assert await store.record(outcomes) == [None] * len(tasks)
        assert await store.purge(finished_before=T0 + 2, failed_before=T0 + 2, limit=1_500) == 1_500
        assert await store.purge(finished_before=T0 + 2, failed_before=T0 + 2) == 1_000
        assert (await store.stats(now=T0)).total == 0


async def test_kept_counts_follow_every_change_of_status(dsn: str, schema: str) -> None:
    """Inserts and deletes are counted by triggers, status changes by the statements
    that make them: after every verb that moves tasks, the kept counts are the rows."""

    def rows() -> dict[tuple[str, str], int]:
        found = sql(dsn, f'SELECT queue, status, count(*) FROM "{schema}".tasks GROUP BY 1, 2')
        return {(str(q), str(s)): int(str(n)) for q, s, n in found}

    async def check(store: PostgresStore) -> None:
        stats = await store.stats(now=T0)
        kept = {
            (queue, status.value): n
            for queue, counts in stats.queues.items()
            for status, n in counts.items()
            if n
        }
        assert kept == rows()

    async with PostgresStore(dsn, schema=schema) as store:
        tasks = [make_task(queue=("a", "b")[i % 2], max_lost_runs=i % 2) for i in range(12)]
        await store.enqueue(tasks)
        await store.enqueue([make_task(queue="a", unique_key="k")])  # through enqueue_tasks
        await check(store)
        claimed = await store.claim("w", now=T0, limit=8, lease_until=T0 + 1)
        await check(store)
        one, two, three, four, five, six, seven, eight = (t.id for t in claimed)
        await store.record(
            [
                Outcome.success(one, "w", T0 + 1),
                Outcome.failure(two, "w", T0 + 1, BOOM),
                Outcome.retry(three, "w", T0 + 1, BOOM, T0 + 5),
                Outcome.next_run(four, "w", T0 + 1, T0 + 60),
            ]
        )
        await check(store)
        assert await store.release([five], worker_id="w") == [five]
        await check(store)
        assert await store.cancel(six, at=T0 + 2)  # running
        assert await store.cancel(tasks[-1].id, at=T0 + 2)  # pending
        await check(store)
        await store.retry(two, at=T0 + 3)
        await check(store)
        reclaimed = await store.reclaim_expired(now=T0 + 10)  # one has no lost run left
        assert len(reclaimed.requeued) == len(reclaimed.failed) == 1
        assert {*reclaimed.requeued, *reclaimed.failed} == {seven, eight}
        await check(store)
        assert await store.purge(finished_before=T0 + 100, failed_before=T0 + 100) == 4
        await check(store)


def plans_of(
    dsn: str, statements: object, calls: dict[str, str], *, mode: str = "force_generic_plan"
) -> dict[str, str]:
    """EXPLAIN each statement as the store runs it: prepared, with a generic plan (or
    planned for its values, as listings are). A name may end in ``_<variant>`` (the
    same statement with other parameters)."""
    plans = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"SET plan_cache_mode = {mode}")
        for name, params in calls.items():
            statement = getattr(statements, name, None) or getattr(
                statements, name.rpartition("_")[0]
            )
            conn.execute(f"PREPARE p AS {statement.sql.decode()}")
            plans[name] = "\n".join(r[0] for r in conn.execute(f"EXPLAIN EXECUTE p{params}"))
            conn.execute("DEALLOCATE p")
    return plans


async def test_indexes_keep_claiming_cheap_among_many_finished_tasks(dsn: str, schema: str) -> None:
    async with PostgresStore(dsn, schema=schema) as store:
        await store.enqueue([make_task() for _ in range(10)])
        await store.enqueue([make_task(queue="other", unique_key=f"k{i}") for i in range(10)])
        statements = store._sql
    table = f'"{schema}".tasks'

    def insert(status: str, count: int, queue: str = "default", func: str = "f") -> None:
        sql(
            dsn,
            f"INSERT INTO {table} (id, func, args, kwargs, status, priority, eta, max_retries, "
            f"retry_on_timeout, attempts, created_at, finished_at, queue) "
            f"SELECT '{status}{queue}' || g, '{func}', '[]', '{{}}', '{status}', 0, {T0}, "
            f"0, false, 1, {T0}, {T0}, '{queue}' FROM generate_series(1, {count}) g",
        )
        sql(dsn, f"ANALYZE {table}")

    insert("success", 50_000)
    insert("failed", 100, queue="other", func="g")
    claims = {
        "claim": f"({T0}, 4, 'w', {T0 + 30}, NULL, NULL)",
        "claim_queues": f"({T0}, 4, 'w', {T0 + 30}, '{{default,other}}', '{{2,4}}')",
    }
    plans = plans_of(
        dsn,
        statements,
        {
            **claims,
            "queue_etas": "(NULL)",
            "queue_etas_named": "('{default,other}')",
            "expired": f"({T0})",
            "reclaim": f"('{{a}}', '{{w}}', '{{0}}', '{{NULL}}', {T0})",
            "renew": f"('w', {T0 + 30})",
            "purge": f"({T0 - 1}, {T0 - 1}, 1000)",
            "release": "('{success1,success2}', 'w')",
            "record": "('{success1}', '{w}', '{null}', '{NULL}', '{1}', '{NULL}', '{NULL}')",
            "await_results": "('{success1}')",
            "set_progress": "('success1', 'w', NULL)",
            "counts": "",
        },
    )
    for name, plan in plans.items():
        assert "Seq Scan on tasks" not in plan, (name, plan)
    # partial indexes: the finished rows are in none of those the worker reads
    for name in ("claim", "claim_queues", "queue_etas", "queue_etas_named"):
        assert "tasks_queue_claim" in plans[name], (name, plans[name])
    for name in ("expired", "renew"):  # the running rows alone, from either index
        assert "tasks_running" in plans[name] or "tasks_status_seq" in plans[name], plans[name]
    assert "tasks_finished" in plans["purge"]
    # counts are kept, not counted: the tasks table is not read at all
    assert " tasks " not in plans["counts"], plans["counts"]

    # listings are planned for their values: a rare status, queue, function or an
    # id prefix is read from its index, in seq order where the index gives it (the
    # store runs a listing by queue, function or prefix once per status)
    top = 2**63 - 1
    listings = plans_of(
        dsn,
        statements,
        {
            "list": "(0, NULL, NULL, NULL, NULL, NULL, 51)",
            "list_newest": f"({top}, NULL, NULL, NULL, NULL, NULL, 51)",
            "list_status": "(0, 'failed', NULL, NULL, NULL, NULL, 51)",
            "list_queue": "(0, 'failed', 'other', NULL, NULL, NULL, 51)",
            "list_newest_func": f"({top}, 'failed', NULL, 'g', NULL, NULL, 51)",
            "list_prefix": "(0, 'success', NULL, NULL, 'success12', 'success13', 51)",
            # live tasks of one queue or function: among the few of their status
            "list_livequeue": "(0, 'pending', 'other', NULL, NULL, NULL, 51)",
            "list_newest_livefunc": f"({top}, 'pending', NULL, 'g', NULL, NULL, 51)",
            "list_liveprefix": "(0, 'pending', NULL, NULL, 'a', 'b', 51)",
        },
        mode="force_custom_plan",
    )
    for name, plan in listings.items():
        assert "Seq Scan on tasks" not in plan, (name, plan)
    assert "tasks_seq_key" in listings["list"] and "Sort" not in listings["list"]
    assert "Backward using tasks_seq_key" in listings["list_newest"]
    for name in ("list_status", "list_queue", "list_newest_func"):
        assert "Sort" not in listings[name], (name, listings[name])
    assert "tasks_pkey" in listings["list_prefix"], listings["list_prefix"]

    # a backlog of due tasks is read in claim order, not sorted: the only sort
    # merges the few rows each queue gave
    insert("pending", 20_000)
    for name, params in claims.items():
        (plan,) = plans_of(dsn, statements, {name: params}).values()
        assert "tasks_queue_claim" in plan, plan
        sort_keys = [line.strip() for line in plan.splitlines() if "Sort Key" in line]
        # the limited queues by name, the merge of the queues' picks; no task row sorted
        assert sort_keys == [
            "Sort Key: q.name",
            "Sort Key: picked.priority DESC, picked.eta, picked.queue_seq",
        ], plan


async def test_next_due_is_the_earliest_eta_over_every_priority(dsn: str, schema: str) -> None:
    async with PostgresStore(dsn, schema=schema) as store:
        assert await store.next_due(now=T0) is None
        etas = {5: T0 + 50, 1: T0 + 10, 0: T0 + 30, -3: T0 + 20}
        await store.enqueue([make_task(priority=p, eta=eta) for p, eta in etas.items()])
        assert await store.next_due(now=T0) == T0 + 10


async def test_clock_skew_is_measured_at_open(dsn: str, schema: str) -> None:
    async with PostgresStore(dsn, schema=schema) as store:
        assert store.clock_skew is not None
        assert abs(store.clock_skew) < 5  # same machine


async def test_a_task_is_never_held_by_two_workers_under_contention(dsn: str, schema: str) -> None:
    tasks = [make_task() for _ in range(200)]
    held: dict[str, str] = {}
    async with PostgresStore(dsn, schema=schema) as a, PostgresStore(dsn, schema=schema) as b:
        await a.enqueue(tasks)

        async def work(store: PostgresStore, worker: str) -> None:
            while claimed := await store.claim(worker, now=T0, limit=3, lease_until=T0 + 30):
                for task in claimed:
                    assert held.setdefault(task.id, worker) == worker
                outcomes = [Outcome.success(t.id, worker, T0 + 1, None) for t in claimed]
                assert await store.record(outcomes) == [None] * len(claimed)

        async with trio.open_nursery() as nursery:
            for i in range(4):
                nursery.start_soon(work, a if i % 2 else b, f"w{i}")
        assert len(held) == len(tasks)
        assert (await a.stats(now=T0)).counts[TaskStatus.SUCCESS] == len(tasks)


async def test_closing_the_store_under_a_waiter_does_not_break_it(dsn: str, schema: str) -> None:
    store = PostgresStore(dsn, schema=schema)
    await store.open()
    await store.wait_for_change(
        Change.WORK, store.change_version(Change.WORK), trio.current_time() + FAR
    )
    async with trio.open_nursery() as nursery:
        seen = store.change_version(Change.WORK)
        nursery.start_soon(store.wait_for_change, Change.WORK, seen, trio.current_time() + 0.2)
        await trio.testing.wait_all_tasks_blocked()  # it is reading the listening connection
        await store.aclose()
    with pytest.raises(StoreError, match="closed"):
        await store.list_tasks()
