"""Celery settings (``CELERY_*``) read as djqueue's, and the checks that name the rest."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from djqueue.core import celery_names, celery_rules, conf
from djqueue.ops import celery_checks


def messages(settings: Any) -> dict[str, tuple[str, str, str]]:
    """The Celery checks' messages by setting name: (id, message, hint)."""
    found = {}
    for message in celery_checks.check_celery_settings():
        setting = message.msg.split(" ", 1)[0]
        found[setting] = (message.id, message.msg, message.hint)
    return found


def test_celery_names_set_djqueue_settings(settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_DEFAULT_QUEUE = "celery"
    settings.CELERY_TASK_TIME_LIMIT = 300
    settings.CELERY_TASK_SOFT_TIME_LIMIT = datetime.timedelta(minutes=4)
    settings.CELERY_WORKER_PREFETCH_MULTIPLIER = 1
    settings.CELERY_WORKER_CONCURRENCY = 8
    settings.CELERY_RESULT_EXPIRES = datetime.timedelta(hours=2)
    settings.CELERY_TASK_ROUTES = {"shop.tasks.*": {"queue": "shop"}}
    assert conf.get("EAGER") is True
    assert conf.get("DEFAULT_QUEUE") == "celery"
    assert (conf.get("TIME_LIMIT"), conf.get("SOFT_TIME_LIMIT")) == (300.0, 240.0)
    assert (conf.get("PREFETCH_MULTIPLIER"), conf.get("CONCURRENCY")) == (1, 8)
    assert conf.get("RESULT_RETENTION_SECONDS") == 7200.0
    assert conf.get("ROUTES") == {"shop.tasks.*": {"queue": "shop"}}
    assert messages(settings) == {}


def test_djqueue_wins_and_the_check_says_so(settings: Any) -> None:
    settings.DJQUEUE = {"EAGER": False}
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert conf.get("EAGER") is False
    [(code, text, _)] = messages(settings).values()
    assert code == "djqueue.W103"
    assert "DJQUEUE['EAGER'] wins" in text


def test_same_value_in_both_places_is_not_reported(settings: Any) -> None:
    settings.DJQUEUE = {"RESULT_RETENTION_SECONDS": 3600.0}
    settings.CELERY_RESULT_EXPIRES = 3600
    assert messages(settings) == {}


def test_old_names_are_read_and_new_ones_win(settings: Any) -> None:
    settings.CELERY_ALWAYS_EAGER = True
    settings.CELERYD_CONCURRENCY = 3
    settings.CELERYBEAT_SCHEDULE = {}
    assert conf.get("EAGER") is True
    assert conf.get("CONCURRENCY") == 3
    settings.CELERY_WORKER_CONCURRENCY = 5
    assert conf.get("CONCURRENCY") == 5


def test_imports_and_include_are_both_loaded(settings: Any) -> None:
    settings.CELERY_IMPORTS = ("orders.jobs",)
    settings.CELERY_INCLUDE = ["orders.jobs", "billing.jobs"]
    assert conf.get("IMPORTS") == ["orders.jobs", "billing.jobs"]


def test_results_kept_for_ever(settings: Any) -> None:
    settings.CELERY_RESULT_EXPIRES = None
    assert conf.get("RESULT_RETENTION_SECONDS") is None


def test_broker_and_result_backend_have_no_effect(settings: Any) -> None:
    settings.CELERY_BROKER_URL = "redis://localhost:6379/0"
    settings.CELERY_RESULT_BACKEND = "django-db"
    found = messages(settings)
    assert {code for code, _, _ in found.values()} == {"djqueue.I101"}
    assert "Django database" in found["CELERY_BROKER_URL"][2]


@pytest.mark.parametrize(
    ("name", "value", "advice"),
    [
        ("CELERY_TASK_SERIALIZER", "pickle", "JSON only"),
        ("CELERY_ACCEPT_CONTENT", ["json", "pickle"], "JSON only"),
        ("CELERY_WORKER_PREFETCH_MULTIPLIER", 0, "at least 1"),
        ("CELERY_TASK_ACKS_LATE", False, "idempotent"),
        ("CELERY_BEAT_SCHEDULER", "django_celery_beat.schedulers:DatabaseScheduler", "import-beat"),
        ("CELERY_TIMEZONE", "Mars/Olympus", "IANA"),
        ("CELERY_TASK_IGNORE_RESULT", True, "CELERY_TASK_ANNOTATIONS"),
        ("CELERY_WORKER_POOL", "threads", "-P"),
    ],
)
def test_what_cannot_be_honoured_is_named_with_what_to_do(
    settings: Any, name: str, value: Any, advice: str
) -> None:
    setattr(settings, name, value)
    code, text, hint = messages(settings)[name]
    assert code == "djqueue.W101"
    assert "not honoured" in text
    assert advice in hint


def test_values_djqueue_already_has_are_quiet(settings: Any) -> None:
    settings.CELERY_TASK_SERIALIZER = "json"
    settings.CELERY_ACCEPT_CONTENT = ["application/json"]
    settings.CELERY_TASK_ACKS_LATE = True
    settings.CELERY_ENABLE_UTC = True
    settings.CELERY_TIMEZONE = "Europe/Paris"
    settings.CELERY_TASK_TRACK_STARTED = True
    assert messages(settings) == {}


def test_an_invalid_value_is_not_used(settings: Any) -> None:
    settings.CELERY_WORKER_PREFETCH_MULTIPLIER = 0
    assert conf.get("PREFETCH_MULTIPLIER") == conf.DEFAULTS["PREFETCH_MULTIPLIER"]


def test_typos_get_a_suggestion(settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGR = True
    code, _, hint = messages(settings)["CELERY_TASK_ALWAYS_EAGR"]
    assert code == "djqueue.W102"
    assert hint == "Did you mean CELERY_TASK_ALWAYS_EAGER?"
    assert conf.get("EAGER") is False


def test_names_that_celery_never_had_point_to_annotations(settings: Any) -> None:
    settings.CELERY_TASK_MAX_RETRIES = 5
    code, _, hint = messages(settings)["CELERY_TASK_MAX_RETRIES"]
    assert code == "djqueue.W102"
    assert "'max_retries'" in hint and "CELERY_TASK_ANNOTATIONS" in hint


def test_every_rule_names_a_setting_celery_knows() -> None:
    assert set(celery_rules.RULES) <= celery_names.KNOWN
    assert set(celery_names.OLD_NAMES.values()) <= celery_names.KNOWN
    mapped = {rule.ours for rule in celery_rules.RULES.values() if rule.ours}
    assert mapped <= set(conf.DEFAULTS)


def test_crontabs_without_a_zone_run_in_celery_timezone(settings: Any) -> None:
    from djqueue import schedules

    eight = schedules.crontab(minute=0, hour=8)
    assert eight.fields()["timezone"] == "UTC"
    settings.CELERY_TIMEZONE = "Europe/Paris"
    assert eight.fields()["timezone"] == "Europe/Paris"
    after = datetime.datetime(2026, 7, 1, 12, tzinfo=datetime.UTC)
    assert eight.next_after(after) == datetime.datetime(2026, 7, 2, 6, tzinfo=datetime.UTC)
    assert schedules.crontab(hour=8, timezone="UTC").fields()["timezone"] == "UTC"
