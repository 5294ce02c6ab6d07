"""A SQL function to enqueue jobs from outside Python: ``djqueue_enqueue(...)``.

Version 1 of djqueue's SQL interface. Its signature only grows new parameters with
defaults; ``djqueue_sql_version()`` tells callers which version they talk to.
"""

from django.db import migrations

ENQUEUE_FUNCTION = """
CREATE OR REPLACE FUNCTION djqueue_enqueue(
    task_name text,
    args jsonb DEFAULT '[]'::jsonb,
    kwargs jsonb DEFAULT '{}'::jsonb,
    queue text DEFAULT 'default',
    priority integer DEFAULT 0,
    eta timestamptz DEFAULT NULL,
    max_attempts integer DEFAULT 4
) RETURNS uuid
LANGUAGE plpgsql
AS $$
DECLARE
    new_id uuid := gen_random_uuid();
BEGIN
    IF task_name IS NULL OR task_name = '' THEN
        RAISE EXCEPTION 'djqueue_enqueue: task_name is required (the name a worker knows)';
    END IF;
    IF jsonb_typeof(args) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'djqueue_enqueue: args must be a JSON array, not %', args;
    END IF;
    IF jsonb_typeof(kwargs) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'djqueue_enqueue: kwargs must be a JSON object, not %', kwargs;
    END IF;
    IF queue IS NULL OR queue = '' OR length(queue) > 100 THEN
        RAISE EXCEPTION 'djqueue_enqueue: queue must be a name of 1 to 100 characters';
    END IF;
    IF priority IS NULL OR priority < -100 OR priority > 100 THEN
        RAISE EXCEPTION 'djqueue_enqueue: priority must be from -100 to 100, not %', priority;
    END IF;
    INSERT INTO djqueue_job (
        id, task_name, queue, priority, state, args, kwargs, attempt, retries,
        max_attempts, eta, enqueued_at, worker, error_type, error_message, traceback, gated
    ) VALUES (
        new_id, task_name, queue, priority, 'PENDING', args, kwargs, 0, 0,
        max_attempts, COALESCE(eta, now()), now(), '', '', '', '', false
    );
    -- Transactional like every enqueue: workers hear of it when the caller commits.
    PERFORM pg_notify('djqueue', queue);
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION djqueue_enqueue(text, jsonb, jsonb, text, integer, timestamptz, integer)
    IS 'djqueue SQL interface, version 1: enqueue a job; returns its id';

CREATE OR REPLACE FUNCTION djqueue_sql_version() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 1 $$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS djqueue_enqueue(text, jsonb, jsonb, text, integer, timestamptz, integer);
DROP FUNCTION IF EXISTS djqueue_sql_version();
"""


class Migration(migrations.Migration):
    dependencies = [("djqueue", "0005_operations")]

    operations = [migrations.RunSQL(ENQUEUE_FUNCTION, reverse_sql=DROP_FUNCTIONS)]
