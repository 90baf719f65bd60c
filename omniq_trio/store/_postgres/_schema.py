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
#: The parameters of enqueue_tasks, which fire_schedule takes too (after its own):
#: one array per task column, in the order of _rows.enqueue_params, then per task
#: the earlier task of the batch it collapses into, the channel and payload to notify.
_ENQUEUE_PARAMS: Final = """p_id text[], p_func text[], p_args json[], p_kwargs json[],
        p_status text[], p_priority bigint[], p_eta double precision[],
        p_interval double precision[], p_max_retries integer[], p_timeout double precision[],
        p_retry_on_timeout boolean[], p_attempts integer[], p_created_at double precision[],
        p_started_at double precision[], p_finished_at double precision[],
        p_worker_id text[], p_lease_until double precision[], p_error json[],
        p_queue text[], p_unique_key text[], p_unique_for double precision[],
        p_scheduled_at double precision[], p_lost_runs integer[], p_max_lost_runs integer[],
        p_progress json[], p_headers json[], p_first integer[], p_channel text, p_payload text"""

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
    # 3: named queues, unique keys, lost runs, progress and headers on tasks;
    # queue controls, cron schedules and the worker registry beside them;
    # counts by queue and status kept as the tasks change; indexes for the
    # claims per queue and for listings.
    """
    ALTER TABLE {s}.tasks
        ADD COLUMN queue text NOT NULL DEFAULT 'default',
        ADD COLUMN unique_key text,
        ADD COLUMN unique_for double precision,
        ADD COLUMN scheduled_at double precision,
        ADD COLUMN lost_runs integer NOT NULL DEFAULT 0,
        ADD COLUMN max_lost_runs integer NOT NULL DEFAULT 3,
        ADD COLUMN progress json,
        ADD COLUMN headers json NOT NULL DEFAULT '{{}}';
    -- Claims take from each queue in claim order (see queries.sql, claim):
    -- the one index on claimable rows, now per queue.
    DROP INDEX {s}.tasks_claim;
    CREATE INDEX tasks_queue_claim ON {s}.tasks (queue, priority DESC, eta, queue_seq)
        WHERE status IN ('pending', 'retrying');
    -- At most one live task per unique key: the index, not a read, decides
    -- between enqueues that race (and a retry racing an enqueue).
    CREATE UNIQUE INDEX tasks_unique_live ON {s}.tasks (unique_key)
        WHERE unique_key IS NOT NULL AND status IN ('pending', 'running', 'retrying');
    -- The latest finish of a key, for unique_for.
    CREATE INDEX tasks_unique_finished ON {s}.tasks (unique_key, finished_at)
        WHERE unique_key IS NOT NULL AND status IN ('success', 'failed', 'cancelled');
    -- Listings page by seq within one status (tasks_status_seq), and, among
    -- finished tasks, within one queue or one function (per status, merged).
    -- Every index entry is paid for by each enqueue, claim or finish that
    -- writes the row: running tasks are in none (few, tasks_running finds
    -- them), and the pending and retrying ones only in tasks_status_seq (a
    -- listing of those by queue or function reads the live rows of one
    -- status, which a worker drains). Ids compare in byte order (COLLATE
    -- "C", whatever the database's collation), so the primary key also
    -- serves lookups by id prefix.
    ALTER TABLE {s}.tasks ALTER COLUMN id TYPE text COLLATE "C";
    CREATE INDEX tasks_status_seq ON {s}.tasks (status, seq) WHERE status <> 'running';
    CREATE INDEX tasks_queue_seq ON {s}.tasks (queue, status, seq)
        WHERE status IN ('success', 'failed', 'cancelled');
    CREATE INDEX tasks_func_seq ON {s}.tasks (func, status, seq)
        WHERE status IN ('success', 'failed', 'cancelled');

    -- One row per queue that is paused or rate-limited (none otherwise).
    CREATE TABLE {s}.queues (
        name text PRIMARY KEY,
        paused boolean NOT NULL DEFAULT false,
        -- at most max_starts claims in any window of per seconds
        max_starts integer CHECK (max_starts > 0),
        per double precision CHECK (per > 0),
        -- the start times of its latest claims (at most max_starts), oldest first
        starts double precision[] NOT NULL DEFAULT '{{}}',
        CHECK ((max_starts IS NULL) = (per IS NULL))
    );
    -- Cron schedules as pools last recorded them; the slots fired, apart,
    -- so that a pool recording its definitions never moves one back.
    CREATE TABLE {s}.schedules (
        name text PRIMARY KEY,
        func text NOT NULL,
        cron text NOT NULL,
        timezone text NOT NULL,
        queue text NOT NULL,
        last_slot double precision,
        next_slot double precision,
        updated_at double precision NOT NULL
    );
    CREATE TABLE {s}.schedule_slots (
        name text PRIMARY KEY,
        last_slot double precision NOT NULL
    );
    CREATE TABLE {s}.workers (
        id text PRIMARY KEY,
        hostname text NOT NULL,
        pid bigint NOT NULL,
        concurrency integer NOT NULL,
        queues text[],
        started_at double precision NOT NULL,
        last_seen double precision NOT NULL,
        expires_at double precision NOT NULL,
        running text[] NOT NULL,
        succeeded bigint NOT NULL,
        failed bigint NOT NULL
    );

    -- Counts by queue and status, without counting rows: every statement
    -- that adds, changes the status of or deletes tasks appends its net
    -- changes to task_count_changes: inserts and deletes through a trigger
    -- per statement, over its transition tables (whoever writes them, a
    -- caller's transaction too); status changes in the statement that makes
    -- them (queries.sql, count_moves; cancel_task and retry_task below),
    -- which costs a claim or a finish a fraction of what a trigger did and
    -- spares renewals and progress (a status changed by hand is not
    -- counted). Appending takes no lock that another transaction waits for,
    -- so concurrent claims and records never queue behind a counter row;
    -- the changes are folded into task_counts from time to time (purge,
    -- stats). A count is task_counts plus the changes not folded yet.
    CREATE TABLE {s}.task_counts (
        queue text NOT NULL,
        status text NOT NULL,
        n bigint NOT NULL,
        PRIMARY KEY (queue, status)
    );
    CREATE TABLE {s}.task_count_changes (
        queue text NOT NULL,
        status text NOT NULL,
        delta bigint NOT NULL
    );
    INSERT INTO {s}.task_counts (queue, status, n)
        SELECT queue, status, count(*) FROM {s}.tasks GROUP BY queue, status;
    -- SECURITY DEFINER: a role that may change tasks needs no rights on the counts.
    CREATE FUNCTION {s}.count_inserted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    BEGIN
        INSERT INTO {s}.task_count_changes (queue, status, delta)
        SELECT queue, status, count(*) FROM new_rows GROUP BY queue, status;
        RETURN NULL;
    END
    $fn$;
    CREATE FUNCTION {s}.count_deleted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    BEGIN
        INSERT INTO {s}.task_count_changes (queue, status, delta)
        SELECT queue, status, -count(*) FROM old_rows GROUP BY queue, status;
        RETURN NULL;
    END
    $fn$;
    CREATE TRIGGER tasks_count_inserted AFTER INSERT ON {s}.tasks
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION {s}.count_inserted();
    CREATE TRIGGER tasks_count_deleted AFTER DELETE ON {s}.tasks
        REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION {s}.count_deleted();

    -- Enqueues of one unique key wait for each other: a transaction-level
    -- advisory lock per key (by its hash; keys sharing a hash merely wait),
    -- taken in hash order so that batches never deadlock among themselves.
    -- The reads that follow then see every committed task with the key,
    -- which is what makes unique_for (a finished task within N seconds)
    -- hold across processes: the index above only knows live tasks.
    CREATE FUNCTION {s}.lock_unique_keys(p_keys text[]) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
    DECLARE
        h integer;
    BEGIN
        FOR h IN SELECT DISTINCT hashtext(k) FROM unnest(p_keys) k WHERE k IS NOT NULL ORDER BY 1
        LOOP
            PERFORM pg_advisory_xact_lock(hashtext('omniq_trio unique {s}'), h);
        END LOOP;
    END
    $fn$;

    -- Enqueue tasks, all or none (a duplicate id raises): per task, in
    -- order, the id of the task that holds it and whether it was created.
    -- p_first[i] names the earlier task of the batch that task i collapses
    -- into (same unique key), else NULL. A task whose key a live task holds,
    -- or a task finished at or after its created_at - unique_for, is not
    -- created: that task answers (_rules.unique_key_taken, in SQL). Notifies
    -- p_channel with p_payload (at commit) when it created any.
    --
    -- A function, not a statement, because each query in a VOLATILE
    -- function sees what committed before it began (READ COMMITTED): the
    -- holder lookup after the key locks sees the latest holders, and a task
    -- refused by the unique index (a retry made its holder live meanwhile)
    -- is looked up again. It is also the one statement a caller's own
    -- transaction runs to enqueue there (PostgresStore.enqueue_statement).
    CREATE FUNCTION {s}.enqueue_tasks(
        {enqueue_params}
    ) RETURNS TABLE (task_id text, created boolean)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
    DECLARE
        v_id text[] := p_id;
        v_created boolean[] := array_fill(false, ARRAY[cardinality(p_id)]);
        v_todo integer[];
        v_done integer[];
        v_rounds integer := 0;
        r record;
    BEGIN
        IF cardinality(p_id) = 0 THEN
            RETURN;
        END IF;
        PERFORM {s}.lock_unique_keys(p_unique_key);
        v_todo := ARRAY(
            SELECT o FROM generate_subscripts(p_id, 1) o WHERE p_first[o] IS NULL ORDER BY o
        );
        LOOP
            v_rounds := v_rounds + 1;
            -- the tasks that make a task with a unique key a duplicate
            FOR r IN
                SELECT o, coalesce(
                    (SELECT h.id FROM {s}.tasks h
                        WHERE h.unique_key = p_unique_key[o]
                            AND h.status IN ('pending', 'running', 'retrying')),
                    (SELECT h.id FROM {s}.tasks h
                        WHERE p_unique_for[o] IS NOT NULL AND h.unique_key = p_unique_key[o]
                            AND h.status IN ('success', 'failed', 'cancelled')
                            AND h.finished_at >= p_created_at[o] - p_unique_for[o]
                        ORDER BY h.finished_at DESC LIMIT 1)
                ) AS holder
                FROM unnest(v_todo) o WHERE p_unique_key[o] IS NOT NULL
            LOOP
                IF r.holder IS NOT NULL THEN
                    v_id[r.o] := r.holder;
                    v_todo := array_remove(v_todo, r.o);
                END IF;
            END LOOP;
            WITH inserted AS (
                INSERT INTO {s}.tasks (
                    id, func, args, kwargs, status, priority, eta, "interval", max_retries,
                    timeout, retry_on_timeout, attempts, created_at, started_at, finished_at,
                    worker_id, lease_until, error, queue, unique_key, unique_for, scheduled_at,
                    lost_runs, max_lost_runs, progress, headers
                )
                SELECT p_id[o], p_func[o], p_args[o], p_kwargs[o], p_status[o], p_priority[o],
                    p_eta[o], p_interval[o], p_max_retries[o], p_timeout[o],
                    p_retry_on_timeout[o], p_attempts[o], p_created_at[o], p_started_at[o],
                    p_finished_at[o], p_worker_id[o], p_lease_until[o], p_error[o], p_queue[o],
                    p_unique_key[o], p_unique_for[o], p_scheduled_at[o], p_lost_runs[o],
                    p_max_lost_runs[o], p_progress[o], p_headers[o]
                FROM unnest(v_todo) o
                ORDER BY o
                ON CONFLICT (unique_key)
                    WHERE unique_key IS NOT NULL AND status IN ('pending', 'running', 'retrying')
                    DO NOTHING
                RETURNING id
            )
            SELECT ARRAY(SELECT o FROM unnest(v_todo) o WHERE p_id[o] IN (SELECT id FROM inserted))
            INTO v_done;
            FOR i IN 1 .. cardinality(v_done) LOOP
                v_created[v_done[i]] := true;
                v_todo := array_remove(v_todo, v_done[i]);
            END LOOP;
            -- what is left met a live holder that committed after the lookup
            EXIT WHEN cardinality(v_todo) = 0;
            IF v_rounds >= 10 THEN
                RAISE EXCEPTION 'omniq_trio: could not settle the unique keys of an enqueue';
            END IF;
        END LOOP;
        FOR i IN 1 .. cardinality(p_id) LOOP
            IF p_first[i] IS NOT NULL THEN
                v_id[i] := v_id[p_first[i]];
            END IF;
        END LOOP;
        IF true = ANY (v_created) THEN
            PERFORM pg_notify(p_channel, p_payload);
        END IF;
        RETURN QUERY SELECT v_id[o], v_created[o] FROM generate_subscripts(p_id, 1) o ORDER BY o;
    END
    $fn$;

    -- Fire slot p_slot of schedule p_name once across processes: if its last
    -- fired slot is older (or it has none), record the slot and enqueue the
    -- task (enqueue_tasks' arguments follow); else return no row.
    CREATE FUNCTION {s}.fire_schedule(
        p_name text, p_slot double precision,
        {enqueue_params}
    ) RETURNS TABLE (task_id text, created boolean)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
    BEGIN
        INSERT INTO {s}.schedule_slots AS f (name, last_slot) VALUES (p_name, p_slot)
        ON CONFLICT (name) DO UPDATE SET last_slot = EXCLUDED.last_slot
            WHERE f.last_slot < EXCLUDED.last_slot;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        RETURN QUERY SELECT * FROM {s}.enqueue_tasks(
            p_id, p_func, p_args, p_kwargs, p_status, p_priority, p_eta, p_interval,
            p_max_retries, p_timeout, p_retry_on_timeout, p_attempts, p_created_at,
            p_started_at, p_finished_at, p_worker_id, p_lease_until, p_error, p_queue,
            p_unique_key, p_unique_for, p_scheduled_at, p_lost_runs, p_max_lost_runs,
            p_progress, p_headers, p_first, p_channel, p_payload);
    END
    $fn$;

    -- retry_task (migration 2) with the new columns: fresh retry and lost-run
    -- budgets, its slot moved to p_at, and not while another live task holds
    -- its unique key (no row; the unique index refuses one that became live
    -- meanwhile). CREATE OR REPLACE keeps what EXECUTE was granted.
    CREATE OR REPLACE FUNCTION {s}.retry_task(p_id text, p_at double precision)
    RETURNS SETOF text
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $fn$
        WITH moved AS (UPDATE {s}.tasks t SET
            status = 'pending', eta = p_at, scheduled_at = p_at, attempts = 0, lost_runs = 0,
            finished_at = NULL, queue_seq = nextval('{s}.queue_seq'), result_status = NULL,
            result_value = NULL, result_error = NULL, result_attempts = NULL,
            result_started_at = NULL, result_finished_at = NULL
        FROM (
            SELECT seq, status, unique_key FROM {s}.tasks WHERE id = p_id FOR UPDATE OFFSET 0
        ) old
        WHERE t.seq = old.seq AND old.status = 'failed'
            AND NOT EXISTS (
                SELECT FROM {s}.tasks h
                WHERE old.unique_key IS NOT NULL AND h.unique_key = old.unique_key
                    AND h.status IN ('pending', 'running', 'retrying')
            )
        RETURNING t.id, t.queue
        ),
        counted AS (
            INSERT INTO {s}.task_count_changes (queue, status, delta)
            SELECT queue, 'pending', 1 FROM moved
            UNION ALL
            SELECT queue, 'failed', -1 FROM moved
        )
        SELECT id FROM moved
    $fn$;
    -- cancel_task (migration 2), appending its count changes.
    CREATE OR REPLACE FUNCTION {s}.cancel_task(p_id text, p_at double precision)
    RETURNS TABLE (previous text, awaited boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $fn$
        WITH moved AS (
            UPDATE {s}.tasks t SET
                status = 'cancelled', finished_at = p_at, worker_id = NULL,
                lease_until = NULL, result_status = 'cancelled', result_value = NULL,
                result_error = NULL, result_attempts = t.attempts,
                result_started_at = t.started_at, result_finished_at = p_at
            FROM (
                SELECT seq, status FROM {s}.tasks WHERE id = p_id FOR UPDATE OFFSET 0
            ) old
            WHERE t.seq = old.seq AND old.status IN ('pending', 'retrying', 'running')
            RETURNING old.status AS previous, t.awaited, t.queue
        ),
        counted AS (
            INSERT INTO {s}.task_count_changes (queue, status, delta)
            SELECT queue, previous, -1 FROM moved
            UNION ALL
            SELECT queue, 'cancelled', 1 FROM moved
        )
        SELECT previous, awaited FROM moved
    $fn$;
    """,
)

#: The version this code writes and reads.
SCHEMA_VERSION: Final = len(MIGRATIONS)

_NEWER_SCHEMA: Final = "omniq_trio schema too new"
_INSUFFICIENT_PRIVILEGE: Final = "42501"


def _upgrade_block(schema: str) -> str:
    s = f'"{schema}"'
    steps = "\n".join(
        f"IF v < {n} THEN {sql.format(s=s, enqueue_params=_ENQUEUE_PARAMS)}\n"
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
