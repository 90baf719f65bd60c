"""The statements the PostgreSQL store runs, one per Store operation.

Each change is a single statement, so it commits or rolls back whole, even
when it shares a transaction with others (see ``_writer``). A change that is
refused (the task is not held, not found, already finished) changes no row
and returns none; the store then reads the task's state to say why.

Statements that lock rows of other workers skip locked ones (claim, renew,
reclaim, purge: another statement is already changing them); those that wait
for a lock (record, release, cancel, retry) lock tasks by id, which only the
primary key can serve. Should two transactions still wait for each other,
PostgreSQL breaks the cycle with an error and the group commit runs each
statement again alone. Locked rows are then updated by ``seq`` (not by
``ctid``: a row that another transaction changed while we waited for its lock
has a new ``ctid``, which the statement's snapshot cannot see), through
``seq = ANY (ARRAY(...))``, which the planner can only serve from the ``seq``
index: statements run as generic prepared plans, whose row estimates, made
from statistics of another day, could otherwise favour a full scan.
"""

from __future__ import annotations

from typing import Final, final

import attrs

from ._wire import Statement

__all__ = ["CHANGE_CODES", "TASK_COLUMNS", "Statements"]

#: Columns that make a ``Task``, in the order of its fields.
TASK_COLUMNS: Final = (
    'id, func, args, kwargs, status, priority, eta, "interval", max_retries, timeout, '
    "retry_on_timeout, attempts, created_at, started_at, finished_at, worker_id, lease_until, error"
)
#: Columns that make a ``TaskResult`` (with the task id).
RESULT_COLUMNS: Final = (
    "result_status, result_value, result_error, result_attempts, result_started_at, "
    "result_finished_at"
)

#: Letters a notification's payload starts with: what changed.
CHANGE_CODES: Final = {"work": "w", "finished": "f"}

_CLAIMABLE: Final = "status IN ('pending', 'retrying')"
_FINISHED: Final = "status IN ('success', 'failed', 'cancelled')"


@final
@attrs.frozen
class Statements:
    """Every statement, for the tables in one schema, notifying on one channel."""

    enqueue: Statement
    claim: Statement
    record: Statement
    release: Statement
    renew: Statement
    held: Statement
    reclaim_expired: Statement
    release_claim: Statement
    cancel: Statement
    retry: Statement
    purge: Statement
    await_results: Statement
    task_state: Statement
    task_states: Statement
    get_task: Statement
    get_result: Statement
    list_all: Statement
    list_status: Statement
    stats: Statement
    next_due: Statement
    server_time: Statement

    def all(self) -> tuple[Statement, ...]:
        """Every statement, for preparing on a new connection."""
        return tuple(getattr(self, field.name) for field in attrs.fields(type(self)))

    @classmethod
    def build(cls, schema: str, channel: str, token: str) -> Statements:
        """Statements on ``schema``'s tables; ``token`` marks this store's notifications."""
        tasks = f'"{schema}".tasks'
        next_queue_seq = f"nextval('\"{schema}\".queue_seq')"

        def notify(letters: str) -> str:
            # letters: SQL for the payload's change letters
            return f"pg_notify('{channel}', {letters} || ':{token}')"

        def announce(work: str, finished: str) -> str:
            # RETURNING for a changed row: notify `w` if `work`, and `f` if
            # `finished` and someone waits for the result. NOTIFY serializes
            # the commits that send one, so finished runs nobody awaits stay
            # quiet.
            letters = (
                f"(CASE WHEN {work} THEN 'w' ELSE '' END"
                f" || CASE WHEN ({finished}) AND awaited THEN 'f' ELSE '' END)"
            )
            return f"CASE WHEN {letters} <> '' THEN {notify(letters)} END"

        def _locked_by_id(id_: str) -> str:
            # One task, found (and locked) by its id alone. A status condition
            # here (or pushed down from the caller's, which OFFSET 0 stops)
            # would let the planner read the index of running tasks instead,
            # and stale statistics can make it: every running task, per id.
            # The caller checks status and holder on the locked row.
            return (
                f"SELECT seq, status, worker_id FROM {tasks} WHERE id = {id_} FOR UPDATE OFFSET 0"
            )

        def requeue(selection: str) -> str:
            # Make the RUNNING tasks `selection` picks (and locks) PENDING
            # again, queued in the order it picked them; their ids in that order.
            return f"""
            WITH picked AS ({selection}),
            numbered AS (SELECT seq, {next_queue_seq} AS q FROM picked),
            moved AS (
                UPDATE {tasks} t SET
                    status = 'pending', worker_id = NULL, lease_until = NULL, queue_seq = n.q
                FROM numbered n
                WHERE t.seq = ANY (ARRAY(SELECT seq FROM numbered)) AND t.seq = n.seq
                RETURNING t.id, n.q
            )
            SELECT id, {notify("'w'")} FROM moved ORDER BY q
            """

        sql = {
            "enqueue": f"""
            WITH new AS (
                INSERT INTO {tasks} ({TASK_COLUMNS})
                SELECT {TASK_COLUMNS} FROM unnest(
                    $1::text[], $2::text[], $3::json[], $4::json[], $5::text[], $6::bigint[],
                    $7::float8[], $8::float8[], $9::integer[], $10::float8[], $11::boolean[],
                    $12::integer[], $13::float8[], $14::float8[], $15::float8[], $16::text[],
                    $17::float8[], $18::json[]
                ) WITH ORDINALITY AS r({TASK_COLUMNS}, ord)
                ORDER BY ord
                RETURNING 1
            )
            SELECT {notify("'w'")} FROM new LIMIT 1
            """,
            # $1 now, $2 limit, $3 worker_id, $4 lease_until
            "claim": f"""
            UPDATE {tasks} SET
                status = 'running', worker_id = $3::text, lease_until = $4::float8,
                started_at = $1::float8
            WHERE seq = ANY (ARRAY(
                SELECT seq FROM {tasks}
                WHERE {_CLAIMABLE} AND eta <= $1::float8
                ORDER BY priority DESC, eta, queue_seq
                LIMIT $2::integer
                FOR UPDATE SKIP LOCKED
            ))
            RETURNING {TASK_COLUMNS}, queue_seq
            """,
            # Outcomes of runs, one per array index: $1 task ids, $2 worker ids,
            # $3 values (success) or NULL, $4 errors (failure) or NULL, $5 at,
            # $6 retry_at (RETRYING), $7 next_eta (a repeating task's next
            # run). Only those whose worker holds the task change it; a retry
            # keeps the last finished run's result and time. Answers the index
            # (1-based) of each outcome recorded.
            "record": f"""
            WITH outcome AS (
                SELECT * FROM unnest(
                    $1::text[], $2::text[], $3::json[], $4::json[], $5::float8[],
                    $6::float8[], $7::float8[]
                ) WITH ORDINALITY AS o(id, worker_id, value, error, at, retry_at, next_eta, ord)
            ),
            held AS (
                SELECT t.seq, o.* FROM outcome o CROSS JOIN LATERAL ({_locked_by_id("o.id")}) t
                WHERE t.status = 'running' AND t.worker_id = o.worker_id
            ),
            done AS (
                UPDATE {tasks} t SET
                    status = CASE
                        WHEN h.retry_at IS NOT NULL THEN 'retrying'
                        WHEN h.next_eta IS NOT NULL THEN 'pending'
                        WHEN h.error IS NULL THEN 'success'
                        ELSE 'failed' END,
                    eta = coalesce(h.retry_at, h.next_eta, t.eta),
                    queue_seq = CASE WHEN coalesce(h.retry_at, h.next_eta) IS NULL
                        THEN t.queue_seq ELSE {next_queue_seq} END,
                    attempts = CASE WHEN h.retry_at IS NULL AND h.next_eta IS NOT NULL
                        THEN 0 ELSE t.attempts + 1 END,
                    error = h.error,
                    worker_id = NULL,
                    lease_until = NULL,
                    finished_at = CASE WHEN h.retry_at IS NULL THEN h.at ELSE t.finished_at END,
                    result_status = CASE WHEN h.retry_at IS NOT NULL THEN t.result_status
                        WHEN h.error IS NULL THEN 'success' ELSE 'failed' END,
                    result_value = CASE WHEN h.retry_at IS NOT NULL THEN t.result_value
                        ELSE h.value END,
                    result_error = CASE WHEN h.retry_at IS NOT NULL THEN t.result_error
                        ELSE h.error END,
                    result_attempts = CASE WHEN h.retry_at IS NOT NULL THEN t.result_attempts
                        ELSE t.attempts + 1 END,
                    result_started_at = CASE WHEN h.retry_at IS NOT NULL
                        THEN t.result_started_at ELSE t.started_at END,
                    result_finished_at = CASE WHEN h.retry_at IS NOT NULL
                        THEN t.result_finished_at ELSE h.at END
                FROM held h
                WHERE t.seq = ANY (ARRAY(SELECT seq FROM held)) AND t.seq = h.seq
                RETURNING h.ord, {
                announce(
                    work="coalesce(h.retry_at, h.next_eta) IS NOT NULL",
                    finished="h.retry_at IS NULL",
                )
            }
            )
            SELECT ord FROM done
            """,
            # $1 ids, $2 worker_id. Released tasks queue again in the order given.
            "release": requeue(
                f"""
                SELECT t.seq FROM unnest($1::text[]) WITH ORDINALITY AS w(id, ord)
                CROSS JOIN LATERAL ({_locked_by_id("w.id")}) t
                WHERE t.status = 'running' AND t.worker_id = $2::text
                ORDER BY w.ord
                """
            ),
            # $1 worker_id, $2 lease_until. Running tasks are few: scan them all.
            "renew": f"""
            UPDATE {tasks} SET lease_until = $2::float8
            WHERE seq = ANY (ARRAY(
                SELECT seq FROM {tasks} WHERE status = 'running' AND worker_id = $1::text
                FOR UPDATE SKIP LOCKED
            ))
            """,
            # $1 worker_id: the ids it holds (locked or not)
            "held": f"SELECT id FROM {tasks} WHERE status = 'running' AND worker_id = $1::text",
            # $1 now
            "reclaim_expired": requeue(
                f"""
                SELECT seq FROM {tasks}
                WHERE status = 'running' AND lease_until < $1::float8
                ORDER BY lease_until, seq
                FOR UPDATE SKIP LOCKED
                """
            ),
            # what a claim whose reply was lost took: $1 worker_id, $2 its `now`
            "release_claim": requeue(
                f"""
                SELECT seq FROM {tasks}
                WHERE status = 'running' AND worker_id = $1::text AND started_at = $2::float8
                ORDER BY seq
                FOR UPDATE
                """
            ),
            # $1 id, $2 at. Cancel and retry run in functions of the schema
            # (migration 2) that a producer role may execute without UPDATE on
            # the table; a row when the task changed.
            "cancel": f"""
            SELECT CASE WHEN awaited THEN {notify("'f'")} END
            FROM "{schema}".cancel_task($1::text, $2::float8)
            """,
            # $1 id, $2 at
            "retry": f"""
            SELECT {notify("'w'")} FROM "{schema}".retry_task($1::text, $2::float8)
            """,
            # $1 finished_before, $2 batch size
            "purge": f"""
            DELETE FROM {tasks}
            WHERE seq = ANY (ARRAY(
                SELECT seq FROM {tasks}
                WHERE {_FINISHED} AND finished_at < $1::float8
                ORDER BY finished_at
                LIMIT $2::integer
                FOR UPDATE SKIP LOCKED
            ))
            """,
            # $1 ids whose result someone is about to wait for; answers those
            # that have one already (they finished before they were marked)
            "await_results": f"""
            WITH marked AS (
                UPDATE {tasks} SET awaited = true
                WHERE id = ANY ($1::text[]) AND NOT awaited
                RETURNING id, result_status
            )
            SELECT id FROM marked WHERE result_status IS NOT NULL
            """,
            # why a change was refused
            "task_state": f"SELECT status, worker_id FROM {tasks} WHERE id = $1::text",
            "task_states": f"""
            SELECT id, status, worker_id FROM {tasks} WHERE id = ANY ($1::text[])
            """,
            "get_task": f"SELECT {TASK_COLUMNS} FROM {tasks} WHERE id = $1::text",
            "get_result": f"SELECT {RESULT_COLUMNS} FROM {tasks} WHERE id = $1::text",
            "list_all": f"SELECT {TASK_COLUMNS} FROM {tasks} ORDER BY seq LIMIT $1::bigint",
            "list_status": f"""
            SELECT {TASK_COLUMNS} FROM {tasks} WHERE status = $1::text
            ORDER BY seq LIMIT $2::bigint
            """,
            "stats": f"""
            SELECT status, count(*), min(created_at) FILTER (WHERE {_CLAIMABLE})
            FROM {tasks} GROUP BY status
            """,
            # The earliest eta among claimable tasks, from the claim index:
            # its first entry at each priority is that priority's earliest
            # eta, so it looks once per distinct priority, not at every row.
            "next_due": f"""
            WITH RECURSIVE level (priority, eta) AS (
                (SELECT priority, eta FROM {tasks} WHERE {_CLAIMABLE}
                    ORDER BY priority DESC, eta, queue_seq LIMIT 1)
                UNION ALL
                SELECT below.priority, below.eta FROM level, LATERAL (
                    SELECT priority, eta FROM {tasks}
                    WHERE {_CLAIMABLE} AND priority < level.priority
                    ORDER BY priority DESC, eta, queue_seq LIMIT 1
                ) below
            )
            SELECT min(eta) FROM level
            """,
            "server_time": "SELECT extract(epoch FROM clock_timestamp())::float8",
        }
        return cls(
            **{
                name: Statement(f"omniq_{name}".encode(), " ".join(text.split()).encode())
                for name, text in sql.items()
            }
        )
