"""The job list's filters by the states most jobs never reach (FAILURE, IGNORED,
REJECTED, RETRY, REVOKED) read a range of one index per state, newest first, instead of
the failed jobs' index, which held FAILURE and REVOKED by id alone (a filter on REVOKED
read every failure). Built CONCURRENTLY, so that a big table keeps taking jobs (hence a
migration that is not atomic); the old index is dropped once the new one is there.
"""

from django.db import migrations, models

RARE_STATES = """
CREATE INDEX CONCURRENTLY IF NOT EXISTS djqueue_job_rare_states ON djqueue_job
(state, id DESC)
WHERE state IN ('FAILURE', 'IGNORED', 'REJECTED', 'RETRY', 'REVOKED')
"""
FAILED = """
CREATE INDEX CONCURRENTLY IF NOT EXISTS djqueue_job_failed ON djqueue_job (id DESC)
WHERE state IN ('FAILURE', 'REVOKED')
"""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("djqueue", "0024_job_hours"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    RARE_STATES, "DROP INDEX CONCURRENTLY IF EXISTS djqueue_job_rare_states"
                ),
                migrations.RunSQL("DROP INDEX CONCURRENTLY IF EXISTS djqueue_job_failed", FAILED),
            ],
            state_operations=[
                migrations.RemoveIndex(model_name="job", name="djqueue_job_failed"),
                migrations.AddIndex(
                    model_name="job",
                    index=models.Index(
                        condition=models.Q(
                            ("state__in", ["FAILURE", "IGNORED", "REJECTED", "RETRY", "REVOKED"])
                        ),
                        fields=["state", "-id"],
                        name="djqueue_job_rare_states",
                    ),
                ),
            ],
        ),
    ]
