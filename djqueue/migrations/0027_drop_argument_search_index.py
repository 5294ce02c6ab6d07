"""Drop the index on job arguments (``djqueue_job_call_search``, made by 0023).

Every job wrote it when it was sent, claimed and finished: bulk enqueueing ran about a
fifth slower with it. The job list's search reads arguments among the newest jobs
instead (docs/monitoring.md#search). Dropped ``CONCURRENTLY``, so a busy table keeps
taking jobs meanwhile.
"""

from django.db import migrations

CALL_SEARCH = """
CREATE INDEX CONCURRENTLY IF NOT EXISTS djqueue_job_call_search ON djqueue_job
USING gin (("args" || "kwargs") jsonb_path_ops)
"""


class Migration(migrations.Migration):
    # CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("djqueue", "0026_job_vacuum_pace"),
    ]

    operations = [
        migrations.RunSQL("DROP INDEX CONCURRENTLY IF EXISTS djqueue_job_call_search", CALL_SEARCH),
    ]
