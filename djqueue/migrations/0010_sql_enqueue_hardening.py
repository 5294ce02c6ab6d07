"""``djqueue_enqueue()`` hardened: callable by the ``djqueue_producer`` role only, run
with its owner's rights on a fixed ``search_path``, and refusing oversized arguments.

Still version 1 of djqueue's SQL interface: same signature, same behaviour for calls
that were accepted before (see docs/sql.md).
"""

import importlib

from django.db import migrations

SIGNATURE = "djqueue_enqueue(text, jsonb, jsonb, text, integer, timestamptz, integer)"
ROLE = "djqueue_producer"
# The default cap, the same as the Python side's MAX_PAYLOAD_BYTES.
MAX_PAYLOAD_BYTES = 1_048_576

# STABLE, not IMMUTABLE: a replaced cap must not linger in a cached plan. Made in the
# table's schema, where djqueue_enqueue() calls it.
CAP_FUNCTION = f"""
CREATE OR REPLACE FUNCTION @schema@.djqueue_max_payload_bytes() RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT {MAX_PAYLOAD_BYTES}::bigint $$
"""
CAP_COMMENT = """
COMMENT ON FUNCTION @schema@.djqueue_max_payload_bytes()
    IS 'djqueue SQL interface: the largest args plus kwargs, in bytes of JSON, that '
       'djqueue_enqueue() accepts (NULL: no limit)'
"""

# SECURITY DEFINER: a producer needs no rights on the job table, and can add a job only
# as this function writes it (state PENDING, attempt 0, no worker, no result).
# A function that runs with its owner's rights must not resolve names through the
# caller's search_path (a caller could put its own djqueue_job or now() first): the path
# is fixed to pg_catalog, then the table's schema, then pg_temp, named last so that a
# temporary table cannot stand in for ours; and what the body uses is schema-qualified.
# "@schema@" is replaced by the job table's schema when the migration runs.
# The size cap comes from a function that only its owner may replace, not from a
# setting: a producer can SET any custom setting in its own session.
HARDENED_FUNCTION = f"""
CREATE OR REPLACE FUNCTION djqueue_enqueue(
    task_name text,
    args jsonb DEFAULT '[]'::jsonb,
    kwargs jsonb DEFAULT '{{}}'::jsonb,
    queue text DEFAULT 'default',
    priority integer DEFAULT 0,
    eta timestamptz DEFAULT NULL,
    max_attempts integer DEFAULT 4
) RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, @schema@, pg_temp
AS $body$
DECLARE
    new_id uuid := pg_catalog.gen_random_uuid();
    cap bigint := @schema@.djqueue_max_payload_bytes();
    size bigint;
BEGIN
    IF task_name IS NULL OR task_name = '' THEN
        RAISE EXCEPTION 'djqueue_enqueue: task_name is required (the name a worker knows)';
    END IF;
    IF pg_catalog.length(task_name) > 255 THEN
        RAISE EXCEPTION 'djqueue_enqueue: task_name must be at most 255 characters';
    END IF;
    IF pg_catalog.jsonb_typeof(args) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'djqueue_enqueue: args must be a JSON array, not %',
            pg_catalog.left(args::text, 200);
    END IF;
    IF pg_catalog.jsonb_typeof(kwargs) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'djqueue_enqueue: kwargs must be a JSON object, not %',
            pg_catalog.left(kwargs::text, 200);
    END IF;
    IF queue IS NULL OR queue = '' OR pg_catalog.length(queue) > 100 THEN
        RAISE EXCEPTION 'djqueue_enqueue: queue must be a name of 1 to 100 characters';
    END IF;
    IF priority IS NULL OR priority < -100 OR priority > 100 THEN
        RAISE EXCEPTION 'djqueue_enqueue: priority must be from -100 to 100, not %', priority;
    END IF;
    -- Measured as JSON text, as the Python side measures it.
    size := pg_catalog.octet_length(args::text) + pg_catalog.octet_length(kwargs::text);
    IF size > cap THEN
        RAISE EXCEPTION 'djqueue_enqueue: args and kwargs are % bytes as JSON, over the '
            'limit of % bytes; store large data elsewhere (a table row, a file) and pass '
            'its key', size, cap
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'The limit is what djqueue_max_payload_bytes() returns; the owner '
                         'of the djqueue tables may replace that function.';
    END IF;
    INSERT INTO @schema@.djqueue_job (
        id, task_name, queue, priority, state, args, kwargs, attempt, retries,
        max_attempts, eta, enqueued_at, worker, error_type, error_message, traceback, gated
    ) VALUES (
        new_id, task_name, queue, priority, 'PENDING', args, kwargs, 0, 0,
        max_attempts, COALESCE(eta, pg_catalog.now()), pg_catalog.now(), '', '', '', '', false
    );
    -- Transactional like every enqueue: workers hear of it when the caller commits.
    PERFORM pg_catalog.pg_notify('djqueue', queue);
    RETURN new_id;
END
$body$
"""

# The job table's schema is known only in the database: look it up, then create the
# functions with it.
CREATE_HARDENED = f"""
DO $migration$
DECLARE
    home text := (
        SELECT n.nspname
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = 'djqueue_job'::regclass
    );
BEGIN
    EXECUTE pg_catalog.replace($f${CAP_FUNCTION}$f$, '@schema@', pg_catalog.quote_ident(home));
    EXECUTE pg_catalog.replace($f${CAP_COMMENT}$f$, '@schema@', pg_catalog.quote_ident(home));
    EXECUTE pg_catalog.replace(
        $f${HARDENED_FUNCTION}$f$, '@schema@', pg_catalog.quote_ident(home)
    );
END
$migration$
"""

COMMENT = f"""
COMMENT ON FUNCTION {SIGNATURE}
    IS 'djqueue SQL interface, version 1: enqueue a job; returns its id. '
       'Callable by members of {ROLE}.'
"""

REVOKE_PUBLIC = f"REVOKE EXECUTE ON FUNCTION {SIGNATURE} FROM PUBLIC"

# Roles belong to the whole cluster: the role may exist already (made by a DBA, or by
# the migration of another database), and another database's migration may make it at
# the same moment. A user without CREATEROLE cannot make it: the migration goes on, and
# docs/sql.md gives the DBA the statements to run.
GRANT_PRODUCER = f"""
DO $migration$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{ROLE}') THEN
        BEGIN
            CREATE ROLE {ROLE} NOLOGIN;
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'djqueue: the role {ROLE} was not created (this user may not '
                    'create roles); see "Who may enqueue" in djqueue''s docs/sql.md';
            WHEN duplicate_object OR unique_violation THEN
                NULL;
        END;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{ROLE}') THEN
        GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {ROLE};
    END IF;
END
$migration$
"""

# Back to the function of 0006 (SECURITY INVOKER, no cap, callable by everyone). The
# role stays: other databases of the cluster may use it.
_version_1 = importlib.import_module("djqueue.migrations.0006_sql_enqueue")
REVOKE_PRODUCER = f"""
DO $migration$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{ROLE}') THEN
        REVOKE EXECUTE ON FUNCTION {SIGNATURE} FROM {ROLE};
    END IF;
END
$migration$
"""
GRANT_PUBLIC = f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO PUBLIC"
DROP_CAP_FUNCTION = "DROP FUNCTION IF EXISTS djqueue_max_payload_bytes()"


class Migration(migrations.Migration):
    dependencies = [("djqueue", "0009_received_and_kills")]

    operations = [
        # Statements one by one, as written: the DO blocks nest dollar quotes.
        migrations.RunSQL(
            [CREATE_HARDENED, COMMENT, REVOKE_PUBLIC, GRANT_PRODUCER],
            reverse_sql=[
                REVOKE_PRODUCER,
                GRANT_PUBLIC,
                _version_1.ENQUEUE_FUNCTION,
                DROP_CAP_FUNCTION,
            ],
        )
    ]
