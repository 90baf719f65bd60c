-- Least-privilege PostgreSQL roles for omniq_trio (docs: Security).
-- tests/postgres/test_roles.py runs this file, with names of its own.

-- --8<-- [start:roles]
-- As a superuser (or a role with CREATEROLE), once: three roles, and the
-- schema, owned by the role that creates and upgrades its tables.
CREATE ROLE omniq_owner LOGIN;     -- runs `omniq-trio migrate`; owns the tables
CREATE ROLE omniq_producer LOGIN;  -- the web app: enqueue, results, cancel, retry
CREATE ROLE omniq_worker LOGIN;    -- the workers: claim, record, purge
CREATE SCHEMA omniq AUTHORIZATION omniq_owner;
-- Tasks often enqueue tasks: a worker may do what a producer does.
GRANT omniq_producer TO omniq_worker;
-- --8<-- [end:roles]

-- --8<-- [start:grants]
-- As omniq_owner, after `omniq-trio migrate`, and again after every migrate
-- that upgrades the schema (each statement can be run any number of times).

-- Both: find the schema, read its tables (task states, results, the schema's
-- version, which opening a store checks), take numbers from its sequences.
GRANT USAGE ON SCHEMA omniq TO omniq_producer, omniq_worker;
GRANT SELECT ON ALL TABLES IN SCHEMA omniq TO omniq_producer, omniq_worker;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA omniq TO omniq_producer, omniq_worker;

-- The producer: enqueue; mark a result awaited (get_result(wait=True) is then
-- told when it is ready); cancel and retry, through functions that run with
-- the owner's rights and change one task as those verbs do. No other UPDATE
-- and no DELETE: it cannot claim, record, release or purge tasks.
GRANT INSERT ON omniq.tasks TO omniq_producer;
GRANT UPDATE (awaited) ON omniq.tasks TO omniq_producer;
GRANT EXECUTE ON FUNCTION omniq.cancel_task(text, double precision),
    omniq.retry_task(text, double precision) TO omniq_producer;

-- The worker: claim, renew, record, release, reclaim and purge tasks, on
-- every table an upgrade adds too; but it does not write the schema's version.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA omniq TO omniq_worker;
REVOKE INSERT, UPDATE, DELETE ON omniq.schema_version FROM omniq_worker;
-- --8<-- [end:grants]
