"""The statements the PostgreSQL store runs, one per Store operation.

Each changing operation is a single statement: one round trip, and a
transaction of its own that commits or rolls back whole. Data-modifying
``WITH`` clauses let one statement check, change, answer and ``pg_notify``.
Statements that lock several rows either skip locked ones (claim, renew,
reclaim, purge: another statement is already changing them) or lock in
``seq`` order (release), so no two of them can deadlock.
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


def _prefixed(columns: str, alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


@final
@attrs.frozen
class Statements:
    """Every statement, for the tables in one schema, notifying on one channel."""

    enqueue: Statement
    claim: Statement
    complete: Statement
    fail: Statement
    release: Statement
    renew: Statement
    reclaim_expired: Statement
    release_claim: Statement
    cancel: Statement
    retry: Statement
    purge: Statement
    get_task: Statement
    get_result: Statement
    list_all: Statement
    list_status: Statement
    stats: Statement
    next_due: Statement
    server_time: Statement

    @classmethod
    def build(cls, schema: str, channel: str, token: str) -> Statements:
        """Statements on ``schema``'s tables; ``token`` marks this store's notifications."""
        tasks = f'"{schema}".tasks'
        next_queue_seq = f"nextval('\"{schema}\".queue_seq')"

        def notify(codes: str) -> str:
            # codes: SQL for the payload's letters
            return f"pg_notify('{channel}', {codes} || ':{token}')"

        def held_update(assignments: str, codes: str) -> str:
            # Change a task only if `$2` holds it; answer (changed, status, holder).
            return f"""
            WITH cur AS (SELECT status, worker_id FROM {tasks} WHERE id = $1::text),
            done AS (
                UPDATE {tasks} SET {assignments}, worker_id = NULL, lease_until = NULL
                WHERE id = $1::text AND status = 'running' AND worker_id = $2::text
                RETURNING 1
            )
            SELECT EXISTS (SELECT 1 FROM done), (SELECT status FROM cur),
                (SELECT worker_id FROM cur), (SELECT {notify(codes)} FROM done)
            """

        def requeue(selection: str) -> str:
            # Make the RUNNING tasks `selection` picks PENDING again, queued in
            # the order it picked them; answer their ids in that order.
            return f"""
            WITH picked AS ({selection}),
            numbered AS (SELECT seq, {next_queue_seq} AS q FROM picked),
            moved AS (
                UPDATE {tasks} t SET
                    status = 'pending', worker_id = NULL, lease_until = NULL, queue_seq = n.q
                FROM numbered n WHERE t.seq = n.seq
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
            "claim": f"""
            WITH picked AS (
                SELECT seq FROM {tasks}
                WHERE {_CLAIMABLE} AND eta <= $1::float8
                ORDER BY priority DESC, eta, queue_seq
                LIMIT $2::integer
                FOR UPDATE SKIP LOCKED
            )
            UPDATE {tasks} t SET
                status = 'running', worker_id = $3::text, lease_until = $4::float8,
                started_at = $1::float8
            FROM picked WHERE t.seq = picked.seq
            RETURNING {_prefixed(TASK_COLUMNS, "t")}, t.queue_seq
            """,
            # $3 value, $4 at, $5 next_eta (a repeating task's next run)
            "complete": held_update(
                f"""
                status = CASE WHEN $5::float8 IS NULL THEN 'success' ELSE 'pending' END,
                eta = coalesce($5::float8, eta),
                queue_seq = CASE WHEN $5::float8 IS NULL THEN queue_seq
                    ELSE {next_queue_seq} END,
                attempts = CASE WHEN $5::float8 IS NULL THEN attempts + 1 ELSE 0 END,
                finished_at = $4::float8, error = NULL,
                result_status = 'success', result_value = $3::json, result_error = NULL,
                result_attempts = attempts + 1, result_started_at = started_at,
                result_finished_at = $4::float8
                """,
                "CASE WHEN $5::float8 IS NULL THEN 'f' ELSE 'wf' END",
            ),
            # $3 error, $4 at, $5 retry_at (RETRYING), $6 next_eta (a repeating task's next run)
            "fail": held_update(
                f"""
                status = CASE WHEN $5::float8 IS NOT NULL THEN 'retrying'
                    WHEN $6::float8 IS NOT NULL THEN 'pending' ELSE 'failed' END,
                eta = coalesce($5::float8, $6::float8, eta),
                queue_seq = CASE WHEN coalesce($5::float8, $6::float8) IS NULL THEN queue_seq
                    ELSE {next_queue_seq} END,
                attempts = CASE WHEN $5::float8 IS NULL AND $6::float8 IS NOT NULL THEN 0
                    ELSE attempts + 1 END,
                error = $3::json,
                finished_at = CASE WHEN $5::float8 IS NULL THEN $4::float8 ELSE finished_at END,
                result_status = CASE WHEN $5::float8 IS NULL THEN 'failed'
                    ELSE result_status END,
                result_value = CASE WHEN $5::float8 IS NULL THEN NULL ELSE result_value END,
                result_error = CASE WHEN $5::float8 IS NULL THEN $3::json ELSE result_error END,
                result_attempts = CASE WHEN $5::float8 IS NULL THEN attempts + 1
                    ELSE result_attempts END,
                result_started_at = CASE WHEN $5::float8 IS NULL THEN started_at
                    ELSE result_started_at END,
                result_finished_at = CASE WHEN $5::float8 IS NULL THEN $4::float8
                    ELSE result_finished_at END
                """,
                "CASE WHEN $5::float8 IS NULL THEN 'wf' ELSE 'w' END",
            ),
            # Released tasks queue again in the order given (`ord`); rows are
            # locked in `seq` order first so that two releases cannot deadlock.
            "release": requeue(
                f"""
                SELECT seq FROM (
                    SELECT t.seq, w.ord
                    FROM unnest($1::text[]) WITH ORDINALITY AS w(id, ord)
                    JOIN {tasks} t ON t.id = w.id
                    WHERE t.status = 'running' AND t.worker_id = $2::text
                    ORDER BY t.seq
                    FOR UPDATE OF t
                ) held
                ORDER BY ord
                """
            ),
            "renew": f"""
            UPDATE {tasks} t SET lease_until = $2::float8
            FROM (
                SELECT seq FROM {tasks} WHERE status = 'running' AND worker_id = $1::text
                FOR UPDATE SKIP LOCKED
            ) h
            WHERE t.seq = h.seq
            """,
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
            "cancel": f"""
            WITH cur AS (SELECT status FROM {tasks} WHERE id = $1::text),
            done AS (
                UPDATE {tasks} SET
                    status = 'cancelled', finished_at = $2::float8, worker_id = NULL,
                    lease_until = NULL, result_status = 'cancelled', result_value = NULL,
                    result_error = NULL, result_attempts = attempts,
                    result_started_at = started_at, result_finished_at = $2::float8
                WHERE id = $1::text AND status IN ('pending', 'retrying', 'running')
                RETURNING 1
            )
            SELECT EXISTS (SELECT 1 FROM done), (SELECT status FROM cur),
                (SELECT {notify("'f'")} FROM done)
            """,
            "retry": f"""
            WITH cur AS (SELECT status FROM {tasks} WHERE id = $1::text),
            done AS (
                UPDATE {tasks} SET
                    status = 'pending', eta = $2::float8, attempts = 0, finished_at = NULL,
                    queue_seq = {next_queue_seq}, result_status = NULL, result_value = NULL,
                    result_error = NULL, result_attempts = NULL, result_started_at = NULL,
                    result_finished_at = NULL
                WHERE id = $1::text AND status = 'failed'
                RETURNING 1
            )
            SELECT EXISTS (SELECT 1 FROM done), (SELECT status FROM cur),
                (SELECT {notify("'w'")} FROM done)
            """,
            "purge": f"""
            WITH doomed AS (
                SELECT seq FROM {tasks}
                WHERE {_FINISHED} AND finished_at < $1::float8
                ORDER BY finished_at
                LIMIT $2::integer
                FOR UPDATE SKIP LOCKED
            )
            DELETE FROM {tasks} t USING doomed d WHERE t.seq = d.seq
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
            "next_due": f"SELECT min(eta) FROM {tasks} WHERE {_CLAIMABLE}",
            "server_time": "SELECT extract(epoch FROM clock_timestamp())::float8",
        }
        return cls(
            **{
                name: Statement(f"omniq_{name}".encode(), " ".join(text.split()).encode())
                for name, text in sql.items()
            }
        )
