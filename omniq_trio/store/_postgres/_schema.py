"""The tables omniq_trio keeps in its PostgreSQL schema, and their upgrades.

``<schema>.schema_version`` records each migration applied. :func:`migrate`
brings a schema up to :data:`SCHEMA_VERSION` in one ``DO`` block: one round
trip, one transaction, serialized between processes that open the store at
the same time by an advisory lock, so it is safe to run on every open.

One row per task holds the task and the result of its last finished run.
Times are ``double precision`` seconds since the epoch, as the callers give
them (a ``timestamptz`` would round them to microseconds). Arguments, results
and errors are ``json`` (not ``jsonb``), which keeps the text as written, so
they come back exactly: key order, ``1.0`` versus ``1``, ``1e16``.
"""

from __future__ import annotations

from typing import Final

from ._wire import PgConnection, QueryError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

#: Each migration's SQL, in order; ``{s}`` is the quoted schema name. Never
#: edit a released one: add the next.
MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: tasks and their results
    """
    CREATE SEQUENCE {s}.queue_seq;
    CREATE TABLE {s}.tasks (
        -- enqueue order (list_tasks)
        seq bigserial NOT NULL UNIQUE,
        id text PRIMARY KEY,
        func text NOT NULL,
        args json NOT NULL,
        kwargs json NOT NULL,
        status text NOT NULL CHECK (
            status IN ('pending', 'running', 'success', 'failed', 'retrying', 'cancelled')
        ),
        priority bigint NOT NULL,
        eta double precision NOT NULL,
        -- claim order among tasks of equal priority and eta: taken anew each
        -- time the task is queued (enqueue, release, retry), as in the other stores
        queue_seq bigint NOT NULL DEFAULT nextval('{s}.queue_seq'),
        "interval" double precision,
        max_retries integer NOT NULL,
        timeout double precision,
        retry_on_timeout boolean NOT NULL,
        attempts integer NOT NULL,
        created_at double precision NOT NULL,
        started_at double precision,
        finished_at double precision,
        worker_id text,
        lease_until double precision,
        error json,
        -- someone waits for this task's result: announce when a run finishes
        awaited boolean NOT NULL DEFAULT false,
        -- the last finished run (result_status IS NULL: none yet)
        result_status text,
        result_value json,
        result_error json,
        result_attempts integer,
        result_started_at double precision,
        result_finished_at double precision
    );
    -- Partial indexes hold only the rows they serve, so claiming, expiry and
    -- purging stay fast with millions of finished tasks in the table.
    -- The one index on claimable rows, in claim order: with a second (say on
    -- eta alone), a generic plan built while the queue was short would read
    -- all due rows through it and sort them, on every claim, once it is long.
    CREATE INDEX tasks_claim ON {s}.tasks (priority DESC, eta, queue_seq)
        WHERE status IN ('pending', 'retrying');
    -- Running tasks are few (workers x concurrency): renewing a worker's
    -- leases scans them all. An index on worker_id would also match the
    -- lookup by id that completes a task, and the planner, unable to tell
    -- them apart in a generic plan, could pick it and walk every task the
    -- worker holds (or held, until vacuum).
    CREATE INDEX tasks_running ON {s}.tasks (lease_until) WHERE status = 'running';
    CREATE INDEX tasks_finished ON {s}.tasks (finished_at)
        WHERE status IN ('success', 'failed', 'cancelled');
    """,
    # 2: cancel and retry as functions that run with the schema owner's rights
    # (SECURITY DEFINER), so that a producer role may cancel and retry tasks
    # without UPDATE on the tasks table: column privileges cannot tell a
    # cancel (status -> cancelled) from a claim (status -> running). Each
    # changes one task by id, exactly as the statement it replaced; callers
    # send the notification. EXECUTE is granted by the DBA (docs: Security).
    """
    CREATE FUNCTION {s}.cancel_task(p_id text, p_at double precision)
    RETURNS TABLE (previous text, awaited boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $fn$
        UPDATE {s}.tasks t SET
            status = 'cancelled', finished_at = p_at, worker_id = NULL,
            lease_until = NULL, result_status = 'cancelled', result_value = NULL,
            result_error = NULL, result_attempts = t.attempts,
            result_started_at = t.started_at, result_finished_at = p_at
        FROM (SELECT seq, status FROM {s}.tasks WHERE id = p_id FOR UPDATE OFFSET 0) old
        WHERE t.seq = old.seq AND old.status IN ('pending', 'retrying', 'running')
        RETURNING old.status, t.awaited
    $fn$;
    CREATE FUNCTION {s}.retry_task(p_id text, p_at double precision)
    RETURNS SETOF text
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $fn$
        UPDATE {s}.tasks SET
            status = 'pending', eta = p_at, attempts = 0, finished_at = NULL,
            queue_seq = nextval('{s}.queue_seq'), result_status = NULL, result_value = NULL,
            result_error = NULL, result_attempts = NULL, result_started_at = NULL,
            result_finished_at = NULL
        WHERE id = p_id AND status = 'failed'
        RETURNING id
    $fn$;
    REVOKE ALL ON FUNCTION {s}.cancel_task(text, double precision) FROM PUBLIC;
    REVOKE ALL ON FUNCTION {s}.retry_task(text, double precision) FROM PUBLIC;
    """,
)

#: The version this code writes and reads.
SCHEMA_VERSION: Final = len(MIGRATIONS)

_NEWER_SCHEMA: Final = "omniq_trio schema too new"
_INSUFFICIENT_PRIVILEGE: Final = "42501"


def _upgrade_block(schema: str) -> str:
    s = f'"{schema}"'
    steps = "\n".join(
        f"IF v < {n} THEN {sql.format(s=s)}\n"
        f"INSERT INTO {s}.schema_version (version) VALUES ({n}); END IF;"
        for n, sql in enumerate(MIGRATIONS, start=1)
    )
    return f"""
DO $omniq$
DECLARE v integer;
BEGIN
    -- Up to date: done, having only read. Roles that may not change the
    -- schema (a producer's, a worker's) open the store this way.
    IF to_regclass('{s}.schema_version') IS NOT NULL THEN
        SELECT coalesce(max(version), 0) INTO v FROM {s}.schema_version;
        IF v = {SCHEMA_VERSION} THEN RETURN; END IF;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('omniq_trio schema ' || '{schema}'));
    -- CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the
    -- schema exists: look first, so a role given a schema by its DBA can use it
    IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = '{schema}') THEN
        CREATE SCHEMA {s};
    END IF;
    CREATE TABLE IF NOT EXISTS {s}.schema_version (
        version integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
    );
    SELECT coalesce(max(version), 0) INTO v FROM {s}.schema_version;
    IF v > {SCHEMA_VERSION} THEN
        RAISE EXCEPTION '{_NEWER_SCHEMA}' USING DETAIL = format(
            'schema {schema} is at version %s; this omniq_trio knows up to {SCHEMA_VERSION}', v);
    END IF;
    {steps}
END
$omniq$;
"""


async def migrate(conn: PgConnection, schema: str) -> None:
    """Create ``schema`` and its tables, or upgrade them, to :data:`SCHEMA_VERSION`.

    A schema already at that version is only read (roles without DDL rights
    open the store). Raises ``StoreError`` (a :class:`QueryError`) if the
    schema was written by a newer omniq_trio, or needs creating or upgrading
    and this role may not.
    """
    try:
        await conn.run_script(_upgrade_block(schema))
    except QueryError as exc:
        if str(exc).find(_NEWER_SCHEMA) >= 0:
            raise QueryError(
                exc.sqlstate, "upgrade omniq_trio to use this PostgreSQL schema", exc.detail
            ) from None
        if exc.sqlstate == _INSUFFICIENT_PRIVILEGE:
            raise QueryError(
                exc.sqlstate,
                f"{exc}; schema {schema} is missing or older than this omniq_trio (version "
                f"{SCHEMA_VERSION}) and this role may not create or upgrade it: run "
                "`omniq-trio migrate` as the schema's owner (docs: Security), then grant "
                "this role its rights again",
                exc.detail,
            ) from None
        raise
