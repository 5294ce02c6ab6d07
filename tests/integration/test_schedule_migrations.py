"""Stored schedules written by earlier releases read the same after migrating."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("djqueue", "0011_claimed_at")]
AFTER = [("djqueue", "0012_celery_solar_events")]


@pytest.mark.django_db(transaction=True)
def test_earlier_solar_event_names_become_celerys() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps.get_model("djqueue", "SolarSchedule")
    for index, event in enumerate(("dawn", "noon", "dusk", "sunrise", "sunset")):
        old.objects.create(event=event, latitude=index, longitude=0)
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    from djqueue.models import SolarSchedule

    stored = SolarSchedule.objects.order_by("latitude").values_list("event", flat=True)
    assert list(stored) == ["dawn_civil", "solar_noon", "dusk_civil", "sunrise", "sunset"]
    SolarSchedule.objects.all().delete()
