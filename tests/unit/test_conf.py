"""Settings read through typed accessors: values as documented, clear errors otherwise."""

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from djqueue.core import conf


def test_defaults_come_typed() -> None:
    assert conf.integer("CLAIM_BATCH_SIZE") == 100
    assert conf.number("LEASE_SECONDS") == 30.0
    assert conf.flag("EAGER") is False
    assert conf.database() == "default"


def test_numbers_given_as_text_or_whole_floats_still_work(settings: Any) -> None:
    settings.DJQUEUE = {"CLAIM_BATCH_SIZE": "50", "LEASE_SECONDS": 12}
    assert conf.integer("CLAIM_BATCH_SIZE") == 50
    assert conf.number("LEASE_SECONDS") == 12.0


def test_none_means_not_set_where_documented(settings: Any) -> None:
    settings.DJQUEUE = {"RESULT_RETENTION_SECONDS": None}
    assert conf.optional_number("RESULT_RETENTION_SECONDS") is None


@pytest.mark.parametrize(
    ("name", "value", "read", "message"),
    [
        ("CLAIM_BATCH_SIZE", "lots", conf.integer, "must be a whole number, not 'lots'"),
        ("LEASE_SECONDS", "soon", conf.number, "must be a number, not 'soon'"),
        ("DATABASE", None, conf.string, "must be a string, not None"),
    ],
)
def test_a_wrong_value_names_the_setting(
    settings: Any, name: str, value: Any, read: Any, message: str
) -> None:
    settings.DJQUEUE = {name: value}
    with pytest.raises(ImproperlyConfigured, match=rf"DJQUEUE\['{name}'\] {message}"):
        read(name)


def test_an_unknown_name_is_an_error() -> None:
    with pytest.raises(KeyError, match="unknown djqueue setting 'LEASE'"):
        conf.number("LEASE")
