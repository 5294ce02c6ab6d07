"""Workflows (docs/canvas.md): a job's continuation, and groups with chord counters.

The new job column is nullable without a default, so adding it does not rewrite the table.
"""

import djqueue.core.ids
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("djqueue", "0006_sql_enqueue"),
    ]

    operations = [
        migrations.CreateModel(
            name="Group",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=djqueue.core.ids.new_id,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("job_ids", models.JSONField(default=list)),
                ("created_at", models.DateTimeField()),
                ("remaining", models.IntegerField(blank=True, null=True)),
                ("results", models.JSONField(blank=True, default=dict)),
                ("release", models.JSONField(blank=True, null=True)),
                ("body_id", models.UUIDField(blank=True, null=True)),
                ("failed", models.TextField(blank=True, default="")),
            ],
        ),
        migrations.AddField(
            model_name="job",
            name="workflow",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
