"""Vacuum of the job table at ten times autovacuum's default pace.

Every claimed job leaves an entry in the index claims read, and only vacuum removes it;
on a table of 10 million jobs, vacuum at the default pace (cost limit 200) took 55 s to
clean up after 400,000 jobs and fell behind 10,000 jobs/s of new history, and claims
slowed with every entry left (docs/scaling.md#size). A cost limit of 2,000 for this
table lets its vacuum do ten times the work between its pauses.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("djqueue", "0025_rare_states_index"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE djqueue_job SET (autovacuum_vacuum_cost_limit = 2000)",
            reverse_sql="ALTER TABLE djqueue_job RESET (autovacuum_vacuum_cost_limit)",
        ),
    ]
