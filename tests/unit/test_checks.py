import datetime
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from djqueue.core import schedules
from djqueue.ops import checks


def test_postgresql_passes() -> None:
    assert checks.check_database() == []


def test_other_engine_is_an_error_with_a_hint() -> None:
    lite = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    [error] = checks.database_errors("lite", lite)
    assert error.id == "djqueue.E002"
    assert "djqueue needs PostgreSQL" in error.msg
    assert "django.db.backends.sqlite3" in error.msg


def test_missing_alias_is_an_error(settings: Any) -> None:
    settings.DJQUEUE = {"DATABASE": "nowhere"}
    [error] = checks.check_database()
    assert error.id == "djqueue.E001"


def test_missing_monitoring_alias_is_an_error(settings: Any) -> None:
    settings.DJQUEUE = {"MONITORING_DATABASE": "standby"}
    [error] = checks.check_database()
    assert error.id == "djqueue.E009"
    assert "'standby'" in error.msg


def test_unknown_setting_is_a_warning(settings: Any) -> None:
    settings.DJQUEUE = {"LEASE_SECOND": 5}
    [warning] = checks.check_settings()
    assert warning.id == "djqueue.W001"
    assert "LEASE_SECOND" in warning.msg


def test_heartbeat_must_be_shorter_than_the_lease(settings: Any) -> None:
    settings.DJQUEUE = {"LEASE_SECONDS": 5, "HEARTBEAT_SECONDS": 5}
    [error] = checks.check_settings()
    assert error.id == "djqueue.E003"


ADD = "tests.testapp.tasks.add"


def _beat_schedule(settings: Any, entries: Any) -> list[Any]:
    settings.DJQUEUE = {"BEAT_SCHEDULE": entries}
    return checks.check_beat_schedule()


def test_a_valid_beat_schedule_passes(settings: Any) -> None:
    entries = {
        "every-minute": {"task": ADD, "schedule": 60, "args": [1, 2]},
        "mornings": {
            "task": ADD,
            "schedule": schedules.crontab(minute=0, hour=8),
            "kwargs": {"x": 1, "y": 2},
        },
        "hourly": {"task": ADD, "schedule": datetime.timedelta(hours=1), "args": [3, 4]},
    }
    assert _beat_schedule(settings, entries) == []


def test_a_beat_schedule_that_is_not_a_dict_is_an_error(settings: Any) -> None:
    [error] = _beat_schedule(settings, [{"task": ADD, "schedule": 60}])
    assert error.id == "djqueue.E004"


def test_an_unregistered_task_in_the_beat_schedule_says_which_was_meant(settings: Any) -> None:
    [error] = _beat_schedule(settings, {"nightly": {"task": ADD + "s", "schedule": 60}})
    assert error.id == "djqueue.E005"
    assert error.msg.startswith("BEAT_SCHEDULE['nightly']: unregistered task")
    assert f"did you mean {ADD!r}?" in error.msg


@pytest.mark.parametrize(
    ("schedule", "says"),
    [
        ("0 8 * * *", "schedule must be crontab(...)"),
        (-1.5, "an interval must be positive"),
        (datetime.timedelta(0), "an interval must be positive"),
        (True, "schedule must be crontab(...)"),
    ],
)
def test_a_schedule_that_does_not_parse_is_an_error(
    settings: Any, schedule: Any, says: str
) -> None:
    [error] = _beat_schedule(settings, {"bad": {"task": ADD, "schedule": schedule}})
    assert error.id == "djqueue.E006"
    assert says in error.msg
    assert "crontab(...)" in error.hint


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"task": ADD, "schedule": 60, "kwarg": {}}, "unknown key(s) ['kwarg']"),
        ({"task": ADD}, "the entry has no 'schedule'"),
        ({"task": ADD, "schedule": 60, "args": [object(), 2]}, "JSON cannot carry"),
        ({"task": ADD, "schedule": 60, "options": {"queu": "x"}}, "unknown option(s)"),
        ("tests.testapp.tasks.add", "an entry must be a dict"),
    ],
)
def test_other_bad_entries_are_errors(settings: Any, entry: Any, says: str) -> None:
    [error] = _beat_schedule(settings, {"bad": entry})
    assert error.id == "djqueue.E007"
    assert says in error.msg


def test_manage_py_check_reports_every_bad_entry(settings: Any) -> None:
    settings.DJQUEUE = {
        "BEAT_SCHEDULE": {
            "report": {"task": "tests.testapp.tasks.ad", "schedule": 60},
            "cleanup": {"task": ADD, "schedule": "*/5 * * * *"},
        }
    }
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    text = str(caught.value)
    assert "(djqueue.E005) BEAT_SCHEDULE['report']" in text
    assert f"did you mean {ADD!r}?" in text
    assert "(djqueue.E006) BEAT_SCHEDULE['cleanup']" in text


def test_prepared_statements_by_default_say_nothing(settings: Any) -> None:
    settings.DJQUEUE = {}
    assert checks.check_prepared_statements() == []


def test_listen_dsn_turns_prepared_statements_off_and_the_check_says_why(settings: Any) -> None:
    settings.DJQUEUE = {"LISTEN_DSN": "postgresql://db-primary/shop"}
    [info] = checks.check_prepared_statements()
    assert info.id == "djqueue.I002"
    assert "does not prepare" in info.msg and "LISTEN_DSN is set" in info.msg


def test_prepared_statements_forced_on_behind_a_pooler_are_reported(settings: Any) -> None:
    settings.DJQUEUE = {"LISTEN_DSN": "postgresql://db-primary/shop", "PREPARED_STATEMENTS": True}
    [info] = checks.check_prepared_statements()
    assert info.id == "djqueue.I001"
    assert "max_prepared_statements" in info.hint


def test_prepared_statements_turned_off_are_reported(settings: Any) -> None:
    settings.DJQUEUE = {"PREPARED_STATEMENTS": False}
    [info] = checks.check_prepared_statements()
    assert info.id == "djqueue.I002"
    assert "PREPARED_STATEMENTS'] is False" in info.msg


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_prepared_statements_value_that_is_not_one_of_the_three_is_an_error(
    settings: Any, value: Any
) -> None:
    settings.DJQUEUE = {"PREPARED_STATEMENTS": value}
    [error] = checks.check_prepared_statements()
    assert error.id == "djqueue.E008"
    assert repr(value) in error.msg
