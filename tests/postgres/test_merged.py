"""The PostgreSQL store's shortcuts that must not change what it does: the plain
claim (while no queue has controls) and the outcomes of calls made together
recorded by one statement."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio
import trio.testing

from omniq_trio.errors import LeaseLostError
from omniq_trio.models import RateLimit, TaskError, TaskStatus
from omniq_trio.store import Change, Outcome
from omniq_trio.store._postgres import PostgresStore, _wire
from omniq_trio.store._postgres._wire import Param, Row, Statement
from omniq_trio.testing import T0, make_task

from ..conftest import requires_postgres

pytestmark = requires_postgres

#: Long enough that a wait cut short by a notification visibly was.
FAR = 30.0
BOOM = TaskError("builtins.ValueError", "boom")


def spy_statements(store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the changing statements ``store`` runs from now on."""
    names: list[str] = []
    change = store._change

    async def spying(
        statement: Statement, params: Sequence[Param], *, locks: Sequence[str] = ()
    ) -> list[Row]:
        names.append(statement.name.decode().removeprefix("omniq_"))
        return await change(statement, params, locks=locks)

    monkeypatch.setattr(store, "_change", spying)
    return names


async def claim_ids(store: PostgresStore, limit: int) -> list[str]:
    claimed = await store.claim("w", now=T0, limit=limit, lease_until=T0 + 30)
    return [task.id for task in claimed]


async def test_controls_set_by_another_store_bind_a_plain_claim(
    dsn: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = [make_task(queue="a", priority=1) for _ in range(4)]
    b = [make_task(queue="b") for _ in range(4)]
    async with (
        PostgresStore(dsn, schema=schema) as worker,
        PostgresStore(dsn, schema=schema) as operator,
    ):
        ran = spy_statements(worker, monkeypatch)
        await worker.enqueue([*a, *b])
        assert await claim_ids(worker, 1) == [a[0].id]
        assert ran[-1] == "claim_plain"  # no queue has controls

        # the worker's store has not heard of them: the plain claim sees them
        # in its snapshot, takes nothing, and the full claim honours them
        await operator.pause_queue("a", paused=True)
        await operator.set_queue_limit("b", RateLimit(max_starts=1, per=3600.0))
        del ran[:]
        assert await claim_ids(worker, 10) == [b[0].id]
        assert ran == ["claim_plain", "claim"]
        assert await claim_ids(worker, 10) == []
        assert ran[-1] == "claim"  # controls seen: straight to the full claim

        await operator.pause_queue("a", paused=False)
        await operator.set_queue_limit("b", None)
        assert await claim_ids(worker, 2) == [a[1].id, a[2].id]  # full claim: no controls now
        del ran[:]
        assert await claim_ids(worker, 10) == [a[3].id, *(t.id for t in b[1:])]
        assert ran == ["claim_plain"]


def spy_record_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Per round trip that records outcomes, how many record statements it sends."""
    trips: list[int] = []
    real_run = _wire.PgConnection.run

    async def run(self: _wire.PgConnection, calls: Sequence[_wire.Call]) -> list[_wire.Reply]:
        if n := sum(statement.name == b"omniq_record" for statement, _ in calls):
            trips.append(n)
        return await real_run(self, calls)

    monkeypatch.setattr(_wire.PgConnection, "run", run)
    return trips


async def test_outcomes_recorded_together_run_as_one_statement_each_answered_alone(
    dsn: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = [make_task(queue="q") for _ in range(6)]
    done, failed, retried, repeated, other, lost = (t.id for t in tasks)
    calls = [
        Outcome.success(done, "w", T0 + 1, 1),
        Outcome.failure(failed, "w", T0 + 1, BOOM),
        Outcome.retry(retried, "w", T0 + 1, BOOM, T0 + 5),
        Outcome.next_run(repeated, "w", T0 + 1, T0 + 60, value=2),
        Outcome.success(other, "w", T0 + 1, 3),
        Outcome.success(lost, "intruder", T0 + 1),  # its lease is not the intruder's
    ]
    answers: dict[str, list[Exception | None]] = {}
    async with PostgresStore(dsn, schema=schema) as a, PostgresStore(dsn, schema=schema) as b:
        await a.enqueue(tasks)
        assert len(await a.claim("w", now=T0, limit=6, lease_until=T0 + 30)) == 6
        seen = b.change_version(Change.FINISHED)
        assert await b.get_result(done) is None  # b awaits it: finishing it notifies
        trips = spy_record_trips(monkeypatch)

        async def record(outcome: Outcome) -> None:
            answers[outcome.task_id] = await a.record([outcome])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(b.wait_for_change, Change.FINISHED, seen, trio.current_time() + FAR)
            await trio.testing.wait_all_tasks_blocked()
            for outcome in calls:
                nursery.start_soon(record, outcome)
        assert b.change_version(Change.FINISHED) != seen
        assert len(trips) < len(calls) and set(trips) == {1}  # merged, one statement a trip

        assert {task_id: errors[0] is None for task_id, errors in answers.items()} == {
            t.id: t.id != lost for t in tasks
        }
        assert isinstance(answers[lost][0], LeaseLostError)
        states = {t.id: (await a.get_task(t.id)).status for t in tasks}
        assert states == {
            done: TaskStatus.SUCCESS,
            failed: TaskStatus.FAILED,
            retried: TaskStatus.RETRYING,
            repeated: TaskStatus.PENDING,
            other: TaskStatus.SUCCESS,
            lost: TaskStatus.RUNNING,
        }
        assert (await a.get_result(other)) is not None
        assert (await a.get_task(repeated)).eta == T0 + 60
        counts = (await a.stats(now=T0)).queues["q"]
        assert {status: n for status, n in counts.items() if n} == {
            TaskStatus.SUCCESS: 2,
            TaskStatus.FAILED: 1,
            TaskStatus.RETRYING: 1,
            TaskStatus.PENDING: 1,
            TaskStatus.RUNNING: 1,
        }


async def test_outcomes_of_one_task_recorded_together_are_not_merged(
    dsn: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = make_task()
    async with PostgresStore(dsn, schema=schema) as store:
        await store.enqueue([task])
        await store.claim("w", now=T0, limit=1, lease_until=T0 + 30)
        trips = spy_record_trips(monkeypatch)
        answers: list[Exception | None] = []

        async def record(value: int) -> None:
            answers.extend(await store.record([Outcome.success(task.id, "w", T0 + 1, value)]))

        async with trio.open_nursery() as nursery:
            for value in range(3):
                nursery.start_soon(record, value)
        assert sum(trips) == 3  # each its own statement, whatever the round trips
        assert sorted(answer is None for answer in answers) == [False, False, True]
