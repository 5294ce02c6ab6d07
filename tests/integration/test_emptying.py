"""The suite's flush (tests/emptying.py) leaves the database as Django's would."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection

from tests import emptying
from tests.testapp import tasks


@pytest.mark.django_db(transaction=True)
def test_the_flush_empties_every_table_and_keeps_content_types_and_permissions() -> None:
    kept = (ContentType.objects.count(), Permission.objects.count())
    user = User.objects.create_user("flushed")
    user.user_permissions.add(Permission.objects.first())
    tasks.add.delay_many([(n, n) for n in range(50)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE djqueue_job")

    call_command("flush", verbosity=0, interactive=False)

    tables = connection.introspection.django_table_names(only_existing=True)
    with connection.cursor() as cursor:
        left, used = {}, set()
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
            left[table] = cursor.fetchone()[0]
            cursor.execute("SELECT pg_relation_size(to_regclass(%s))", [table])
            if cursor.fetchone()[0]:
                used.add(table)
        # The admin's job list reads this estimate: truncated, the table has none.
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'djqueue_job'")
        estimate = cursor.fetchone()[0]
    assert {table for table, rows in left.items() if rows} == emptying.KEPT
    # Truncated: no dead rows nor pages left behind in the tables that were written to.
    assert used <= emptying.KEPT
    assert (ContentType.objects.count(), Permission.objects.count()) == kept
    assert estimate <= 0
