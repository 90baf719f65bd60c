"""The PostgreSQL store: one queue shared by worker processes on many machines.

``Settings(backend="postgres", dsn="postgresql://...", postgres_schema="omniq")``
(or ``OMNIQ_BACKEND``, ``OMNIQ_DSN``, ``OMNIQ_POSTGRES_SCHEMA``). PostgreSQL
coordinates the workers; omniq_trio adds no coordination of its own.

Driving psycopg from trio
    psycopg's async API is asyncio-only. We use its libpq wrapper
    (``psycopg.pq``) in non-blocking mode and wait on the socket with
    ``trio.lowlevel.wait_readable``/``wait_writable`` (``_wire``); only
    connecting, which blocks in libpq (name resolution, TLS), runs in a
    thread. Measured on the 2-core test machine, per round trip: a bare
    ``trio.to_thread.run_sync`` costs 173 us; a sync psycopg connection in a
    thread 288 us for a ``SELECT`` and 532 us for an ``UPDATE`` with its
    commit; the non-blocking core driven by trio 53 us and 219 us. The thread
    hop costs more than the query, so we took the non-blocking core.

One statement per change, changes grouped per transaction
    Every Store operation that changes tasks is one SQL statement, kept with
    the others in ``queries.sql`` and loaded by name (``_sql``), so it
    commits or rolls back whole. Most of a statement's cost is its
    round trip and its commit, so statements that callers start while
    another round trip is in flight (the recorder's batch of outcomes, the
    poller's claim, producers' enqueues) are sent together, pipelined, in
    one transaction (``_writer``); a statement that fails alone is retried
    alone, so one caller's error is never another's. The outcomes recorded
    in one round trip go as one statement over all of them, each caller
    answered for its own. Claims take rows
    ``FOR UPDATE SKIP LOCKED`` in priority, eta, FIFO order from each queue
    they may take from, through a partial index of the claimable rows per
    queue, and merge the queues' picks; finished rows, however many, are in
    no index a claim reads. A paused queue is skipped; a rate-limited one is
    locked while a claim counts its recent starts, so every process counts
    the same ones. While no queue has such controls, a claim of every queue
    runs a plainer statement, which looks for controls in its own snapshot
    and leaves the claim to the full one when it finds some.

Unique keys
    A partial unique index allows one live task per key, so racing enqueues
    (and a retry racing an enqueue) cannot both make one. Enqueues of a key
    also take a transaction-level advisory lock on it, then look: what a
    finished task with the key says (``unique_for``) is then seen by every
    enqueue, whichever process makes it. Enqueueing is a function of the
    schema (``enqueue_tasks``), whose queries each see what committed before
    them.

Counts
    ``stats`` and ``list_queues`` count nothing: each statement appends its
    net changes by queue and status to a table of changes (appending takes
    no lock anyone waits for): inserts and deletes through a trigger per
    statement, status changes in the statement that makes them. Purges fold
    them into the counts from time to time.

Transactional enqueue
    ``PostgresStore.enqueue_statement(tasks)`` is the enqueue as one
    statement for a caller's own connection (``enqueue(..., connection=)``):
    the tasks exist if and only if the caller commits, and its notification
    is delivered at the commit.

Cancellation
    Waiting for a connection can be cancelled; a round trip that has started
    is shielded to its end (``_pool``), so a cancelled caller never leaves
    a half-sent statement or an unread reply on a connection, and a change
    the server has received is finished, and answered, before the method
    returns. Each round trip is a whole transaction (autocommit, or a
    pipeline ending in its sync), so no connection is ever lent inside one;
    a connection in any other state is closed, never lent again. Purges
    delete in batches of their own (short locks); a cancelled purge stops
    between batches.

Time
    The Store API takes wall-clock times from the caller (``now``, ``at``,
    ``lease_until``); they are stored as ``double precision`` epoch seconds,
    so they round-trip exactly, and the runtime's clock (trio's, virtual
    under ``MockClock``) stays the only clock. Etas and leases are therefore
    compared with the clock of the machine that looks: a task is due when
    the claiming worker's clock reaches its eta, and a lease lapses when the
    reclaiming worker's clock passes it. With leases of ``lease_duration``
    (30 s) renewed every third of it, a live worker's lease is only taken
    from it if some machine's clock runs more than about two thirds of a
    lease ahead of its own; skew of a second or two only shifts etas by as
    much. Opening the store measures this machine's offset from the
    server's clock (``PostgresStore.clock_skew``) and logs a warning above
    one second: keep the machines on NTP.

Notifications
    A change that makes work claimable (enqueue, release, retry, a lapsed
    lease, a resumed or re-limited queue) sends ``NOTIFY`` with its commit
    (``w``), so idle workers elsewhere wake at once; ``poll_interval`` stays
    the fallback. Cancelling a running task sends ``c``, so that the pool
    running it learns at once. Finished runs notify only
    when someone waits for their result: PostgreSQL serializes the commits
    of transactions that notify (four concurrent completions took 1.1 ms per
    task with a NOTIFY each, 0.7 ms without), so waiting for a result marks
    the task ``awaited`` first, and its finish is announced. Notifications
    arrive on a connection of their own (``_listener``), opened on the first
    wait and read while anyone waits.

Connection failures
    A lost connection (server restart, ``pg_terminate_backend``, network)
    fails the call in progress with ``StoreError``; the pool then drops its
    idle connections and the next call opens a new one. A claim whose reply
    was lost may have committed: the tasks it took are released before the
    next claim, rather than left held by a worker that does not know them.
    Connections use TCP keepalives and ``tcp_user_timeout`` (unless the DSN
    says otherwise), so a round trip to a dead server ends within about half
    a minute instead of hanging.

Schema
    Tables live in ``postgres_schema``, created and upgraded by the store
    itself (``_schema``, a ``schema_version`` table, one advisory-locked
    ``DO`` block per open), so tenants and tests are isolated by schema. An
    up-to-date schema is only read, so roles without DDL rights open it; cancel
    and retry run in ``SECURITY DEFINER`` functions of the schema, so a
    producer role needs no ``UPDATE`` on tasks (docs: Security).
    Arguments, results and errors are ``json`` (kept as written), so values
    come back exactly as they were stored.
"""

from ._store import PostgresStore as PostgresStore

__all__ = ["PostgresStore"]
