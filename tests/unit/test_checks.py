from typing import Any

from djqueue import checks


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


def test_unknown_setting_is_a_warning(settings: Any) -> None:
    settings.DJQUEUE = {"LEASE_SECOND": 5}
    [warning] = checks.check_settings()
    assert warning.id == "djqueue.W001"
    assert "LEASE_SECOND" in warning.msg


def test_heartbeat_must_be_shorter_than_the_lease(settings: Any) -> None:
    settings.DJQUEUE = {"LEASE_SECONDS": 5, "HEARTBEAT_SECONDS": 5}
    [error] = checks.check_settings()
    assert error.id == "djqueue.E003"
