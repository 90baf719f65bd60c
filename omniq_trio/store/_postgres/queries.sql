-- The statements the PostgreSQL store runs, each under a `-- name:` header
-- and loaded by that name (_sql.py); a `-- fragment:` is text that named
-- statements include as {its_name}. Placeholders, substituted once when a
-- store is made: {schema} (the quoted schema name), {channel} (the NOTIFY
-- channel, as a string literal), {token} (this store's mark on the
-- notifications it sends). Comments stand on lines of their own.
--
-- Each change is a single statement, so it commits or rolls back whole,
-- even when it shares a transaction with others (_writer.py). A change that
-- is refused (the task is not held, not found, already finished) changes no
-- row and returns none; the store then reads the task's state to say why.
--
-- Statements that lock rows of other workers skip locked ones (claim, renew,
-- reclaim, purge: another statement is already changing them); those that
-- wait for a lock (record, release, cancel, retry) lock tasks by id, which
-- only the primary key can serve. Should two transactions still wait for
-- each other, PostgreSQL breaks the cycle with an error and the group commit
-- runs each statement again alone. Locked rows are then updated by `seq`
-- (not by `ctid`: a row that another transaction changed while we waited
-- for its lock has a new `ctid`, which the statement's snapshot cannot see),
-- through `seq = ANY (ARRAY(...))`, which the planner can only serve from the
-- `seq` index: statements run as generic prepared plans (plan_cache_mode =
-- force_generic_plan), whose row estimates, made from statistics of another
-- day, could otherwise favour a full scan.
--
-- Notifications: pg_notify({channel}, '<letters>:{token}'), sent at commit:
-- `w` something may be claimable, `f` a task someone awaits finished, `c` a
-- running task was cancelled.


-- fragment: task_columns
-- The columns that make a Task, in the order of its fields (_rows.task_from_row).
id, func, args, kwargs, status, priority, eta, "interval", max_retries, timeout,
retry_on_timeout, attempts, created_at, started_at, finished_at, worker_id, lease_until,
error, queue, unique_key, unique_for, scheduled_at, lost_runs, max_lost_runs, progress,
headers


-- fragment: count_moves
-- Counts by queue and status are kept as changes appended to
-- task_count_changes (migration 3): inserts and deletes by a trigger, and
-- status changes by the statement that makes them, here for running tasks
-- that `moved` (its RETURNING gives queue and the new status) took elsewhere.
-- One INSERT in the statement costs less than a trigger over its
-- transition tables, and renewals and progress append nothing.
counted AS (
    INSERT INTO {schema}.task_count_changes (queue, status, delta)
    SELECT queue, status, count(*) FROM moved GROUP BY queue, status
    UNION ALL
    SELECT queue, 'running', -count(*) FROM moved GROUP BY queue
)

-- fragment: queues_present
-- The queues with claimable tasks, in name order, one descent of
-- tasks_queue_claim each (a loose index scan: no listing index that also
-- holds finished tasks can serve it). A statement given its queues gates
-- its use of `present` on that ($n IS NULL), so the walk never runs then.
present (name) AS (
    (SELECT queue FROM {schema}.tasks
        WHERE status IN ('pending', 'retrying')
        ORDER BY queue, priority DESC, eta, queue_seq LIMIT 1)
    UNION ALL
    SELECT (SELECT queue FROM {schema}.tasks
            WHERE status IN ('pending', 'retrying') AND queue > present.name
            ORDER BY queue, priority DESC, eta, queue_seq LIMIT 1)
    FROM present WHERE present.name IS NOT NULL
)


-- ================================================================ producing

-- name: enqueue
-- $1..$26 one array per column of the tasks (_rows.enqueue_params), $27 per
-- task the earlier task of the batch it collapses into, $28 the payload of
-- the notification. Answers (task id, created) per task, in order.
SELECT task_id, created FROM {schema}.enqueue_tasks(
    $1::text[], $2::text[], $3::json[], $4::json[], $5::text[], $6::bigint[], $7::float8[],
    $8::float8[], $9::integer[], $10::float8[], $11::boolean[], $12::integer[],
    $13::float8[], $14::float8[], $15::float8[], $16::text[], $17::float8[], $18::json[],
    $19::text[], $20::text[], $21::float8[], $22::float8[], $23::integer[], $24::integer[],
    $25::json[], $26::json[], $27::integer[], {channel}, $28::text
)

-- name: enqueue_keyless
-- Tasks none of which names a unique key, all or none (a duplicate id
-- raises): $1..$26 as for enqueue, $27 the payload of the notification.
-- One INSERT and one notification per statement, without enqueue_tasks: the
-- key locks and holder lookups of that function cost a keyless enqueue more
-- than the insert itself. Answers (task id, created) per task, in order
-- (seq is taken in insertion order, which is the order given).
WITH created AS (
    INSERT INTO {schema}.tasks ({task_columns})
    SELECT {task_columns} FROM unnest(
        $1::text[], $2::text[], $3::json[], $4::json[], $5::text[], $6::bigint[], $7::float8[],
        $8::float8[], $9::integer[], $10::float8[], $11::boolean[], $12::integer[],
        $13::float8[], $14::float8[], $15::float8[], $16::text[], $17::float8[], $18::json[],
        $19::text[], $20::text[], $21::float8[], $22::float8[], $23::integer[], $24::integer[],
        $25::json[], $26::json[]
    ) WITH ORDINALITY AS t ({task_columns}, ord)
    ORDER BY ord
    RETURNING id, seq
),
notified AS (SELECT pg_notify({channel}, $27::text) FROM created LIMIT 1)
SELECT c.id, true FROM created c CROSS JOIN notified ORDER BY c.seq

-- name: lock_unique_keys
-- $1 every unique key the transaction's enqueues name: sent first in a
-- shared transaction, so that it takes all its key locks before any other
-- (in one order), and waits holding nothing.
SELECT {schema}.lock_unique_keys($1::text[])

-- name: fire_schedule
-- $1 schedule name, $2 slot, then the enqueue arguments ($3..$30).
SELECT task_id, created FROM {schema}.fire_schedule(
    $1::text, $2::float8,
    $3::text[], $4::text[], $5::json[], $6::json[], $7::text[], $8::bigint[], $9::float8[],
    $10::float8[], $11::integer[], $12::float8[], $13::boolean[], $14::integer[],
    $15::float8[], $16::float8[], $17::float8[], $18::text[], $19::float8[], $20::json[],
    $21::text[], $22::text[], $23::float8[], $24::float8[], $25::integer[], $26::integer[],
    $27::json[], $28::json[], $29::integer[], {channel}, $30::text
)

-- name: cancel
-- $1 id, $2 at. Answers the status it had. Cancel and retry run in
-- functions of the schema (migration 2: SECURITY DEFINER, so that a
-- producer role may run them without UPDATE on the table); a row when the
-- task changed.
SELECT previous, CASE
    WHEN previous = 'running' OR awaited THEN pg_notify(
        {channel},
        CASE WHEN previous = 'running' THEN 'c' ELSE '' END
        || CASE WHEN awaited THEN 'f' ELSE '' END || ':{token}'
    )
END
FROM {schema}.cancel_task($1::text, $2::float8)

-- name: retry
-- $1 id, $2 at: a FAILED task PENDING again, with fresh budgets, unless
-- another live task holds its unique key (then no row; the unique index
-- refuses one that became live meanwhile). See retry_task (migration 3).
SELECT pg_notify({channel}, 'w:{token}') FROM {schema}.retry_task($1::text, $2::float8)

-- name: unique_holder
-- $1 id of a task that could not be retried: its key and the live task holding it.
SELECT t.unique_key, h.id FROM {schema}.tasks t
JOIN {schema}.tasks h ON h.unique_key = t.unique_key
    AND h.status IN ('pending', 'running', 'retrying')
WHERE t.id = $1::text


-- ================================================================= working

-- name: claim_plain
-- The claim when no queue is named and no queue is paused or rate-limited
-- (the queues table is empty): $1..$4 as for claim. The same picks in the
-- same order as claim without its queue controls, which cost a claim of 4
-- about 35 µs of server CPU (read and locked, start times written). Whether
-- any queue has controls is read in the statement's snapshot, as claim reads
-- them: one row, every column NULL but the last (true), says that some
-- queue has them and nothing was taken (the store then runs claim); else
-- the claimed tasks, the last column false. A pause or a limit that commits
-- while this claim runs is not seen by it, as by claim: the claim finishes
-- as if it had started a moment before.
WITH RECURSIVE
{queues_present},
controls (controlled) AS (SELECT EXISTS (SELECT FROM {schema}.queues)),
picked AS (
    SELECT t.* FROM present a CROSS JOIN LATERAL (
        SELECT seq, queue, status, priority, eta, queue_seq FROM {schema}.tasks
        WHERE queue = a.name AND status IN ('pending', 'retrying') AND eta <= $1::float8
        ORDER BY priority DESC, eta, queue_seq
        LIMIT $2::integer
        FOR UPDATE SKIP LOCKED
    ) t
    WHERE a.name IS NOT NULL AND NOT (SELECT controlled FROM controls)
),
chosen AS (
    SELECT seq, queue, status FROM picked ORDER BY priority DESC, eta, queue_seq
    LIMIT $2::integer
),
counted AS (
    INSERT INTO {schema}.task_count_changes (queue, status, delta)
    SELECT queue, status, -count(*) FROM chosen GROUP BY queue, status
    UNION ALL
    SELECT queue, 'running', count(*) FROM chosen GROUP BY queue
),
moved AS (
    UPDATE {schema}.tasks SET
        status = 'running', worker_id = $3::text, lease_until = $4::float8,
        started_at = $1::float8, progress = NULL
    WHERE seq = ANY (ARRAY(SELECT seq FROM chosen))
    RETURNING {task_columns}, queue_seq
)
SELECT m.*, c.controlled FROM controls c LEFT JOIN moved m ON true
WHERE m.id IS NOT NULL OR c.controlled

-- name: claim
-- $1 now, $2 limit, $3 worker_id, $4 lease_until, $5 queue names (NULL:
-- every queue), $6 the most to take from each.
--
-- Per queue, due tasks are read in claim order from tasks_queue_claim, the
-- one index on claimable rows (with a second, say on eta alone, a generic
-- plan built while the queue was short could read every due row through it
-- and sort them, on every claim, once it is long), and locked SKIP LOCKED;
-- the queues' picks are merged in claim order up to the limit. Each queue
-- locks at most as many as the claim may take, so a claim across k queues
-- with due tasks locks up to k times its limit for the instant of its
-- transaction (those it does not take stay pending). Finished rows,
-- however many, are in no index a claim reads.
-- The last column: whether any queue is paused or rate-limited (claim_plain
-- serves the next claims when none is).
WITH RECURSIVE
-- without named queues ($5 NULL): every queue with claimable tasks
{queues_present},
wanted (name, budget) AS (
    SELECT name, NULL::integer FROM present WHERE name IS NOT NULL AND $5::text[] IS NULL
    UNION ALL
    SELECT w.name, w.budget FROM unnest($5::text[], $6::integer[]) AS w (name, budget)
    WHERE w.budget > 0
),
-- Rate-limited queues are locked (in name order) so that claims everywhere
-- count the same starts: at most max_starts in any window of per seconds,
-- the starts after now - per counting (as _rules.starts_allowed).
limited AS (
    SELECT q.name,
        q.max_starts - (SELECT count(*) FROM unnest(q.starts) s WHERE s > $1::float8 - q.per)
            AS allowed
    FROM {schema}.queues q
    WHERE q.name IN (SELECT name FROM wanted) AND q.max_starts IS NOT NULL AND NOT q.paused
    ORDER BY q.name
    FOR UPDATE
),
allowed AS (
    SELECT w.name, least(w.budget, l.allowed, $2::integer) AS budget
    FROM wanted w LEFT JOIN limited l ON l.name = w.name
    WHERE NOT EXISTS (SELECT FROM {schema}.queues p WHERE p.name = w.name AND p.paused)
),
picked AS (
    SELECT t.* FROM allowed a CROSS JOIN LATERAL (
        SELECT seq, queue, status, priority, eta, queue_seq FROM {schema}.tasks
        WHERE queue = a.name AND status IN ('pending', 'retrying') AND eta <= $1::float8
        ORDER BY priority DESC, eta, queue_seq
        LIMIT a.budget
        FOR UPDATE SKIP LOCKED
    ) t
    WHERE a.budget > 0
),
chosen AS (
    SELECT seq, queue, status FROM picked ORDER BY priority DESC, eta, queue_seq
    LIMIT $2::integer
),
-- every row chosen is locked, so every one is updated below
counted AS (
    INSERT INTO {schema}.task_count_changes (queue, status, delta)
    SELECT queue, status, -count(*) FROM chosen GROUP BY queue, status
    UNION ALL
    SELECT queue, 'running', count(*) FROM chosen GROUP BY queue
),
started AS (
    UPDATE {schema}.queues q SET
        starts = (q.starts || array_fill($1::float8, ARRAY[c.n]))[
            greatest(1, cardinality(q.starts) + c.n - q.max_starts + 1):]
    FROM (SELECT queue, count(*)::integer AS n FROM chosen GROUP BY queue) c
    WHERE q.name = c.queue AND q.max_starts IS NOT NULL
)
UPDATE {schema}.tasks SET
    status = 'running', worker_id = $3::text, lease_until = $4::float8,
    started_at = $1::float8, progress = NULL
WHERE seq = ANY (ARRAY(SELECT seq FROM chosen))
RETURNING {task_columns}, queue_seq, EXISTS (SELECT FROM {schema}.queues)

-- name: record
-- Outcomes of runs, one per array index: $1 task ids, $2 worker ids, $3
-- values (success) or NULL, $4 errors (failure) or NULL, $5 at, $6 retry_at
-- (RETRYING), $7 next_eta (a repeating task's next run). Only those whose
-- worker holds the task change it; a retry keeps the last finished run's
-- result and time. Answers the index (1-based) of each outcome recorded.
-- Notifies `w` for what is due again, `f` for finished runs someone awaits
-- (PostgreSQL serializes the commits of transactions that notify, so
-- finished runs nobody awaits stay quiet).
WITH outcome AS (
    SELECT * FROM unnest(
        $1::text[], $2::text[], $3::json[], $4::json[], $5::float8[], $6::float8[],
        $7::float8[]
    ) WITH ORDINALITY AS o (id, worker_id, value, error, at, retry_at, next_eta, ord)
),
held AS (
    SELECT t.seq, t.queue, o.* FROM outcome o CROSS JOIN LATERAL (
        SELECT seq, queue, status, worker_id FROM {schema}.tasks
        WHERE id = o.id FOR UPDATE OFFSET 0
    ) t
    WHERE t.status = 'running' AND t.worker_id = o.worker_id
),
moved AS (
    UPDATE {schema}.tasks t SET
        status = CASE
            WHEN h.retry_at IS NOT NULL THEN 'retrying'
            WHEN h.next_eta IS NOT NULL THEN 'pending'
            WHEN h.error IS NULL THEN 'success'
            ELSE 'failed' END,
        eta = coalesce(h.retry_at, h.next_eta, t.eta),
        scheduled_at = CASE WHEN h.next_eta IS NOT NULL THEN h.next_eta ELSE t.scheduled_at END,
        lost_runs = CASE WHEN h.next_eta IS NOT NULL THEN 0 ELSE t.lost_runs END,
        queue_seq = CASE WHEN coalesce(h.retry_at, h.next_eta) IS NULL
            THEN t.queue_seq ELSE nextval('{schema}.queue_seq') END,
        attempts = CASE WHEN h.retry_at IS NULL AND h.next_eta IS NOT NULL
            THEN 0 ELSE t.attempts + 1 END,
        error = h.error,
        worker_id = NULL,
        lease_until = NULL,
        finished_at = CASE WHEN h.retry_at IS NULL THEN h.at ELSE t.finished_at END,
        result_status = CASE WHEN h.retry_at IS NOT NULL THEN t.result_status
            WHEN h.error IS NULL THEN 'success' ELSE 'failed' END,
        result_value = CASE WHEN h.retry_at IS NOT NULL THEN t.result_value ELSE h.value END,
        result_error = CASE WHEN h.retry_at IS NOT NULL THEN t.result_error ELSE h.error END,
        result_attempts = CASE WHEN h.retry_at IS NOT NULL THEN t.result_attempts
            ELSE t.attempts + 1 END,
        result_started_at = CASE WHEN h.retry_at IS NOT NULL
            THEN t.result_started_at ELSE t.started_at END,
        result_finished_at = CASE WHEN h.retry_at IS NOT NULL
            THEN t.result_finished_at ELSE h.at END
    FROM held h
    WHERE t.seq = ANY (ARRAY(SELECT seq FROM held)) AND t.seq = h.seq
    RETURNING h.ord, h.queue, t.status, CASE
        WHEN coalesce(h.retry_at, h.next_eta) IS NOT NULL OR (h.retry_at IS NULL AND t.awaited)
        THEN pg_notify(
            {channel},
            CASE WHEN coalesce(h.retry_at, h.next_eta) IS NOT NULL THEN 'w' ELSE '' END
            || CASE WHEN h.retry_at IS NULL AND t.awaited THEN 'f' ELSE '' END || ':{token}'
        )
    END
),
{count_moves}
SELECT ord FROM moved

-- name: release
-- $1 ids, $2 worker_id: those it still holds are PENDING again, queued in
-- the order given, uncharged. Answers their ids in that order.
WITH picked AS (
    SELECT t.seq FROM unnest($1::text[]) WITH ORDINALITY AS w (id, ord)
    CROSS JOIN LATERAL (
        SELECT seq, status, worker_id FROM {schema}.tasks WHERE id = w.id FOR UPDATE OFFSET 0
    ) t
    WHERE t.status = 'running' AND t.worker_id = $2::text
    ORDER BY w.ord
),
numbered AS (SELECT seq, nextval('{schema}.queue_seq') AS q FROM picked),
moved AS (
    UPDATE {schema}.tasks t SET
        status = 'pending', worker_id = NULL, lease_until = NULL, queue_seq = n.q
    FROM numbered n
    WHERE t.seq = ANY (ARRAY(SELECT seq FROM numbered)) AND t.seq = n.seq
    RETURNING t.id, n.q, t.queue, t.status
),
{count_moves}
SELECT id, pg_notify({channel}, 'w:{token}') FROM moved ORDER BY q

-- name: release_claim
-- What a claim whose reply was lost took: $1 worker_id, $2 its `now`.
WITH picked AS (
    SELECT seq FROM {schema}.tasks
    WHERE status = 'running' AND worker_id = $1::text AND started_at = $2::float8
    ORDER BY seq
    FOR UPDATE
),
numbered AS (SELECT seq, nextval('{schema}.queue_seq') AS q FROM picked),
moved AS (
    UPDATE {schema}.tasks t SET
        status = 'pending', worker_id = NULL, lease_until = NULL, queue_seq = n.q
    FROM numbered n
    WHERE t.seq = ANY (ARRAY(SELECT seq FROM numbered)) AND t.seq = n.seq
    RETURNING t.id, n.q, t.queue, t.status
),
{count_moves}
SELECT id, pg_notify({channel}, 'w:{token}') FROM moved ORDER BY q

-- name: renew
-- $1 worker_id, $2 lease_until. Running tasks are few (workers x
-- concurrency): scan them all, through tasks_running. An index on worker_id
-- would also match the lookup by id that completes a task, and the planner,
-- unable to tell them apart in a generic plan, could pick it and walk every
-- task the worker holds (or held, until vacuum).
UPDATE {schema}.tasks SET lease_until = $2::float8
WHERE seq = ANY (ARRAY(
    SELECT seq FROM {schema}.tasks WHERE status = 'running' AND worker_id = $1::text
    FOR UPDATE SKIP LOCKED
))

-- name: held
-- $1 worker_id: the ids it holds (locked or not).
SELECT id FROM {schema}.tasks WHERE status = 'running' AND worker_id = $1::text

-- name: expired
-- $1 now: the running tasks whose lease ended before it, oldest lease first.
SELECT {task_columns} FROM {schema}.tasks
WHERE status = 'running' AND lease_until < $1::float8
ORDER BY lease_until, seq

-- name: reclaim
-- Take back tasks `expired` found, one per array index: $1 ids, $2 the
-- worker that held each, $3 its lost_runs then, $4 the error that ends it
-- (_rules.worker_lost_error) or NULL to queue it again, $5 now. A task that
-- changed since (finished, renewed, taken) is left alone. Each counts a lost
-- run. Answers (id, failed) in the order given.
WITH lost AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::json[])
        WITH ORDINALITY AS l (id, worker_id, lost_runs, error, ord)
),
picked AS (
    SELECT t.seq, l.ord, l.error FROM lost l CROSS JOIN LATERAL (
        SELECT seq, status, worker_id, lost_runs, lease_until FROM {schema}.tasks
        WHERE id = l.id FOR UPDATE SKIP LOCKED OFFSET 0
    ) t
    WHERE t.status = 'running' AND t.worker_id = l.worker_id AND t.lost_runs = l.lost_runs
        AND t.lease_until < $5::float8
    ORDER BY l.ord
),
numbered AS (
    SELECT seq, ord, error,
        CASE WHEN error IS NULL THEN nextval('{schema}.queue_seq') END AS q
    FROM picked
),
moved AS (
    UPDATE {schema}.tasks t SET
        status = CASE WHEN n.error IS NULL THEN 'pending' ELSE 'failed' END,
        worker_id = NULL, lease_until = NULL, lost_runs = t.lost_runs + 1,
        queue_seq = coalesce(n.q, t.queue_seq),
        error = coalesce(n.error, t.error),
        finished_at = CASE WHEN n.error IS NULL THEN t.finished_at ELSE $5::float8 END,
        result_status = CASE WHEN n.error IS NULL THEN t.result_status ELSE 'failed' END,
        result_value = CASE WHEN n.error IS NULL THEN t.result_value END,
        result_error = CASE WHEN n.error IS NULL THEN t.result_error ELSE n.error END,
        result_attempts = CASE WHEN n.error IS NULL THEN t.result_attempts ELSE t.attempts END,
        result_started_at = CASE WHEN n.error IS NULL
            THEN t.result_started_at ELSE t.started_at END,
        result_finished_at = CASE WHEN n.error IS NULL
            THEN t.result_finished_at ELSE $5::float8 END
    FROM numbered n
    WHERE t.seq = ANY (ARRAY(SELECT seq FROM numbered)) AND t.seq = n.seq
    RETURNING t.id, n.ord, n.error IS NOT NULL AS failed, t.queue, t.status, CASE
        WHEN n.error IS NULL OR t.awaited THEN pg_notify(
            {channel},
            CASE WHEN n.error IS NULL THEN 'w' ELSE 'f' END || ':{token}'
        )
    END
),
{count_moves}
SELECT id, failed FROM moved ORDER BY ord

-- name: purge
-- $1 finished_before (SUCCESS, CANCELLED), $2 failed_before (FAILED), $3
-- batch size: through tasks_finished, oldest first.
DELETE FROM {schema}.tasks
WHERE seq = ANY (ARRAY(
    SELECT seq FROM {schema}.tasks
    WHERE status IN ('success', 'failed', 'cancelled')
        AND finished_at < greatest($1::float8, $2::float8)
        AND finished_at < CASE WHEN status = 'failed' THEN $2::float8 ELSE $1::float8 END
    ORDER BY finished_at
    LIMIT $3::integer
    FOR UPDATE SKIP LOCKED
))

-- name: set_progress
-- $1 id, $2 worker_id, $3 progress: only the holder may.
UPDATE {schema}.tasks SET progress = $3::json
WHERE id = $1::text AND status = 'running' AND worker_id = $2::text
RETURNING 1

-- name: await_results
-- $1 ids whose result someone is about to wait for; answers those that
-- have one already (they finished before they were marked).
WITH marked AS (
    UPDATE {schema}.tasks SET awaited = true
    WHERE id = ANY ($1::text[]) AND NOT awaited
    RETURNING id, result_status
)
SELECT id FROM marked WHERE result_status IS NOT NULL


-- ================================================= queues, schedules, workers

-- name: pause_queue
-- $1 name, $2 paused. Then drop_idle_queue, in the same transaction.
INSERT INTO {schema}.queues AS q (name, paused) VALUES ($1::text, $2::boolean)
ON CONFLICT (name) DO UPDATE SET paused = EXCLUDED.paused
RETURNING CASE WHEN NOT q.paused THEN pg_notify({channel}, 'w:{token}') END

-- name: set_queue_limit
-- $1 name, $2 max_starts, $3 per; the starts counted so far are kept (the
-- latest max_starts of them). Then drop_idle_queue.
INSERT INTO {schema}.queues AS q (name, max_starts, per)
VALUES ($1::text, $2::integer, $3::float8)
ON CONFLICT (name) DO UPDATE SET
    max_starts = EXCLUDED.max_starts, per = EXCLUDED.per,
    starts = q.starts[greatest(1, cardinality(q.starts) - EXCLUDED.max_starts + 1):]
RETURNING pg_notify({channel}, 'w:{token}')

-- name: clear_queue_limit
-- $1 name. Then drop_idle_queue.
UPDATE {schema}.queues SET max_starts = NULL, per = NULL, starts = '{}'
WHERE name = $1::text
RETURNING pg_notify({channel}, 'w:{token}')

-- name: drop_idle_queue
-- $1 name: a queue neither paused nor limited needs no row.
DELETE FROM {schema}.queues WHERE name = $1::text AND NOT paused AND max_starts IS NULL

-- name: queue_controls
SELECT name, paused, max_starts, per, starts FROM {schema}.queues

-- name: queue_etas
-- $1 queue names (NULL: every queue with claimable tasks): per queue, the
-- earliest eta of a claimable task and the queue's controls. The earliest
-- eta comes from the claim index: its first entry at each priority is that
-- priority's earliest, so it looks once per queue and distinct priority,
-- not at every row.
WITH RECURSIVE
{queues_present},
wanted (name) AS (
    SELECT name FROM present WHERE name IS NOT NULL AND $1::text[] IS NULL
    UNION ALL
    SELECT unnest($1::text[])
),
level (queue, priority, eta) AS (
    SELECT w.name, f.priority, f.eta FROM wanted w CROSS JOIN LATERAL (
        SELECT priority, eta FROM {schema}.tasks
        WHERE queue = w.name AND status IN ('pending', 'retrying')
        ORDER BY priority DESC, eta, queue_seq LIMIT 1
    ) f
    UNION ALL
    SELECT level.queue, below.priority, below.eta FROM level CROSS JOIN LATERAL (
        SELECT priority, eta FROM {schema}.tasks
        WHERE queue = level.queue AND status IN ('pending', 'retrying')
            AND priority < level.priority
        ORDER BY priority DESC, eta, queue_seq LIMIT 1
    ) below
)
SELECT e.queue, e.eta, q.paused, q.max_starts, q.per, q.starts
FROM (SELECT queue, min(eta) AS eta FROM level GROUP BY queue) e
LEFT JOIN {schema}.queues q ON q.name = e.queue

-- name: counts
-- Tasks by queue and status: the folded counts plus the changes since.
SELECT queue, status, sum(n)::bigint FROM (
    SELECT queue, status, n FROM {schema}.task_counts
    UNION ALL
    SELECT queue, status, delta FROM {schema}.task_count_changes
) c
GROUP BY queue, status
HAVING sum(n) <> 0

-- name: fold_counts
-- Fold the count changes appended so far into task_counts (rows another
-- fold is moving are left to it). Then drop_zero_counts.
WITH folded AS (
    DELETE FROM {schema}.task_count_changes
    WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM {schema}.task_count_changes LIMIT 100000 FOR UPDATE SKIP LOCKED
    ))
    RETURNING queue, status, delta
)
INSERT INTO {schema}.task_counts AS c (queue, status, n)
SELECT queue, status, sum(delta)::bigint FROM folded
GROUP BY queue, status
ORDER BY queue, status
ON CONFLICT (queue, status) DO UPDATE SET n = c.n + EXCLUDED.n

-- name: drop_zero_counts
DELETE FROM {schema}.task_counts WHERE n = 0

-- name: register_schedules
-- One array per field of the schedules (names distinct); a slot given is
-- recorded as fired unless a later one was.
WITH given AS (
    SELECT * FROM unnest(
        $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[],
        $7::float8[], $8::float8[]
    ) AS g (name, func, cron, timezone, queue, last_slot, next_slot, updated_at)
),
slots AS (
    INSERT INTO {schema}.schedule_slots AS f (name, last_slot)
    SELECT name, last_slot FROM given WHERE last_slot IS NOT NULL
    ON CONFLICT (name) DO UPDATE SET last_slot = greatest(f.last_slot, EXCLUDED.last_slot)
)
INSERT INTO {schema}.schedules AS s (
    name, func, cron, timezone, queue, last_slot, next_slot, updated_at
)
SELECT * FROM given
ON CONFLICT (name) DO UPDATE SET
    func = EXCLUDED.func, cron = EXCLUDED.cron, timezone = EXCLUDED.timezone,
    queue = EXCLUDED.queue, last_slot = EXCLUDED.last_slot, next_slot = EXCLUDED.next_slot,
    updated_at = EXCLUDED.updated_at

-- name: list_schedules
SELECT s.name, s.func, s.cron, s.timezone, s.queue, coalesce(f.last_slot, s.last_slot),
    s.next_slot, s.updated_at
FROM {schema}.schedules s LEFT JOIN {schema}.schedule_slots f ON f.name = s.name
ORDER BY s.name COLLATE "C"

-- name: register_worker
-- $1..$11 the WorkerInfo's fields. Pools whose heartbeat expired before
-- this one's (they died without unregistering) are dropped.
WITH gone AS (
    DELETE FROM {schema}.workers WHERE expires_at < $7::float8 AND id <> $1::text
)
INSERT INTO {schema}.workers AS w (
    id, hostname, pid, concurrency, queues, started_at, last_seen, expires_at, running,
    succeeded, failed
)
VALUES (
    $1::text, $2::text, $3::bigint, $4::integer, $5::text[], $6::float8, $7::float8,
    $8::float8, $9::text[], $10::bigint, $11::bigint
)
ON CONFLICT (id) DO UPDATE SET
    hostname = EXCLUDED.hostname, pid = EXCLUDED.pid, concurrency = EXCLUDED.concurrency,
    queues = EXCLUDED.queues, started_at = EXCLUDED.started_at,
    last_seen = EXCLUDED.last_seen, expires_at = EXCLUDED.expires_at,
    running = EXCLUDED.running, succeeded = EXCLUDED.succeeded, failed = EXCLUDED.failed

-- name: unregister_worker
DELETE FROM {schema}.workers WHERE id = $1::text

-- name: list_workers
-- $1 now: the pools whose heartbeat has not expired, by start.
SELECT id, hostname, pid, concurrency, queues, started_at, last_seen, expires_at, running,
    succeeded, failed
FROM {schema}.workers
WHERE expires_at >= $1::float8
ORDER BY started_at, id COLLATE "C"


-- ================================================================= reading

-- name: task_state
-- Why a change was refused.
SELECT status, worker_id FROM {schema}.tasks WHERE id = $1::text

-- name: task_states
SELECT id, status, worker_id FROM {schema}.tasks WHERE id = ANY ($1::text[])

-- name: get_task
SELECT {task_columns} FROM {schema}.tasks WHERE id = $1::text

-- name: get_result
SELECT result_status, result_value, result_error, result_attempts, result_started_at,
    result_finished_at
FROM {schema}.tasks WHERE id = $1::text

-- Listings. The filters given decide which index serves a listing best, and
-- a generic plan cannot see them: these are planned for the values of each
-- call (custom_plans before, generic_plans after, in the same transaction).
-- A listing by queue, function or id prefix (or of several statuses) runs
-- once per status, and the runs are merged (_views.merge_pages):
-- tasks_status_seq gives one status's tasks in seq order (running ones
-- excepted: few, and tasks_running finds them), tasks_queue_seq and
-- tasks_func_seq those of one finished status (pending and retrying tasks
-- of one queue or function are read among those of their status), so that
-- a claim adds no entry to them and an enqueue one (see migration 3).
-- $1 the seq after which (before which, newest first) the page starts, $2
-- status, $3 queue, $4 func, $5 id prefix, $6 the least string above every
-- id with that prefix (NULL: any), $7 the page's length; NULL: any. Ids are
-- compared in byte order (the column's COLLATE "C", as its primary key keeps
-- them), whatever the database's collation. Answers the task columns and seq.

-- name: custom_plans
SET plan_cache_mode = force_custom_plan

-- name: generic_plans
SET plan_cache_mode = force_generic_plan

-- name: list
SELECT {task_columns}, seq FROM {schema}.tasks
WHERE seq > $1::bigint
    AND ($2::text IS NULL OR status = $2::text)
    AND ($3::text IS NULL OR queue = $3::text)
    AND ($4::text IS NULL OR func = $4::text)
    AND ($5::text IS NULL OR (
        (id COLLATE "C") >= ($5::text COLLATE "C") AND starts_with(id, $5::text)))
    AND ($6::text IS NULL OR (id COLLATE "C") < ($6::text COLLATE "C"))
ORDER BY seq LIMIT $7::bigint

-- name: list_newest
SELECT {task_columns}, seq FROM {schema}.tasks
WHERE seq < $1::bigint
    AND ($2::text IS NULL OR status = $2::text)
    AND ($3::text IS NULL OR queue = $3::text)
    AND ($4::text IS NULL OR func = $4::text)
    AND ($5::text IS NULL OR (
        (id COLLATE "C") >= ($5::text COLLATE "C") AND starts_with(id, $5::text)))
    AND ($6::text IS NULL OR (id COLLATE "C") < ($6::text COLLATE "C"))
ORDER BY seq DESC LIMIT $7::bigint

-- name: server_time
SELECT extract(epoch FROM clock_timestamp())::float8
