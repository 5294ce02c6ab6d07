"""The job list's search (docs/monitoring.md#search): argument values and error text.

The indexes are on expressions that ``djqueue.db.models.call_values`` and
``error_text`` build for the queries: the two must stay the same. They are built
CONCURRENTLY, so that enqueueing and finishing go on while a big table is indexed (hence
a migration that is not atomic). pg_trgm is a trusted extension: the database's owner
may create it.
"""

from django.db import migrations

CALL_SEARCH = """
CREATE INDEX CONCURRENTLY IF NOT EXISTS djqueue_job_call_search ON djqueue_job
USING gin (("args" || "kwargs") jsonb_path_ops)
"""
# Partial: a job enters it when it fails, never when it is enqueued (no message then).
ERROR_SEARCH = """
CREATE INDEX CONCURRENTLY IF NOT EXISTS djqueue_job_error_search ON djqueue_job
USING gin ((LEFT(("error_type" || ': ') || "error_message", 1000)) gin_trgm_ops)
WHERE NOT ("error_message" = '')
"""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("djqueue", "0022_queue_limits"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE EXTENSION IF NOT EXISTS pg_trgm", reverse_sql=migrations.RunSQL.noop
        ),
        migrations.RunSQL(CALL_SEARCH, "DROP INDEX CONCURRENTLY IF EXISTS djqueue_job_call_search"),
        migrations.RunSQL(
            ERROR_SEARCH, "DROP INDEX CONCURRENTLY IF EXISTS djqueue_job_error_search"
        ),
    ]
