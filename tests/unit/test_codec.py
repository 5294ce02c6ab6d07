import datetime
import decimal
import json
import math
import uuid
import zoneinfo

import pytest

from djqueue.core import codec


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2026, 7, 1, 8, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        datetime.datetime(2026, 1, 1, 12, 0, 0, 123456),
        datetime.date(2026, 2, 28),
        datetime.time(23, 59, 59, 5),
        decimal.Decimal("1234567890.000000001"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        {"nested": [decimal.Decimal("0.1"), {"at": datetime.date(2000, 1, 1)}]},
        None,
        "text",
        [1, 2.5, True],
    ],
)
def test_values_round_trip_with_their_type(value: object) -> None:
    back = codec.loads(codec.dumps(value))
    assert back == value
    assert type(back) is type(value)


def test_aware_datetime_keeps_its_offset() -> None:
    moment = datetime.datetime(2026, 7, 1, 8, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    back = codec.loads(codec.dumps(moment))
    assert back.utcoffset() == datetime.timedelta(hours=2)


def test_tuples_become_lists() -> None:
    assert codec.loads(codec.dumps((1, (2, 3)))) == [1, [2, 3]]


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", float("nan"), math.inf])
def test_values_json_cannot_carry_raise_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        codec.dumps(value)


def test_describe_finds_the_nested_culprit() -> None:
    value = {"ok": 1, "bad": [1, {"when": {1, 2}}]}
    assert codec.describe_unencodable(value) == ("['bad'][1]['when']", "has type set")


def test_describe_reports_bad_dict_keys() -> None:
    path, problem = codec.describe_unencodable({"a": {(1, 2): "x"}}) or ("", "")
    assert path == "['a']"
    assert "dict key of type tuple" in problem


def test_describe_returns_none_for_good_values() -> None:
    assert codec.describe_unencodable({"a": [datetime.date.today()]}) is None


def test_nul_characters_are_refused_but_escaped_backslashes_are_not() -> None:
    with pytest.raises(TypeError, match="NUL character"):
        codec.dumps({"name": "a\x00b"})
    assert codec.loads(codec.dumps(r"a\u0000b")) == r"a\u0000b"


def test_reserved_key_is_refused_and_described() -> None:
    forged = {"__djqueue__": "date", "v": "2020-01-01"}
    with pytest.raises(TypeError, match="reserved"):
        codec.dumps([forged])
    assert codec.describe_unencodable({"x": forged}) == (
        "['x']",
        "has the key '__djqueue__', which djqueue reserves",
    )


def test_nan_is_described_by_what_is_wrong() -> None:
    path, problem = codec.describe_unencodable([1.0, float("nan")]) or ("", "")
    assert path == "[1]"
    assert "NaN" in problem


@pytest.mark.parametrize("value", ["bad \udc80 byte", {"key \ud800": 1}, [["\udfff"]]])
def test_lone_surrogates_are_refused_with_a_way_out(value: object) -> None:
    with pytest.raises(TypeError, match=r"lone surrogate.*errors='replace'"):
        codec.dumps(value)


def test_characters_beyond_the_bmp_still_round_trip() -> None:
    assert codec.loads(codec.dumps(["😀", {"𝄞": "ok"}])) == ["😀", {"𝄞": "ok"}]


def test_describe_points_at_the_lone_surrogate() -> None:
    found = codec.describe_unencodable({"name": ["fine", "b\udc80d"]})
    assert found is not None
    assert found[0] == "['name'][1]" and "lone surrogate" in found[1]


# Rows written by another program (SQL, a hand-made INSERT) may hold anything.

MALFORMED = [
    '[{"__djqueue__": "decimal", "v": "x"}]',
    '{"__djqueue__": "datetime", "v": "not a date"}',
    '[{"__djqueue__": "date", "v": "2026-02-30"}]',
    '{"a": {"__djqueue__": "uuid", "v": 5}}',
    '[{"__djqueue__": "time", "v": null}]',
    '[{"__djqueue__": "decimal", "v": "1e999999999999999999999"}]',
]


@pytest.mark.parametrize("stored", MALFORMED)
def test_a_malformed_tagged_value_fails_to_decode_with_value_error(stored: str) -> None:
    with pytest.raises(ValueError, match=r"is not a valid (decimal|datetime|date|uuid|time)"):
        codec.loads(stored)


def test_json_nested_deeper_than_python_can_read_fails_with_value_error() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        codec.loads("[" * 5000 + "]" * 5000)


def test_dicts_that_only_look_tagged_are_left_as_they_are() -> None:
    odd = [{"__djqueue__": ["odd"], "v": 1}, {"__djqueue__": "set", "v": [1]}]
    assert codec.loads(json.dumps(odd)) == odd


def decoded_by_model_field(stored: str) -> object:
    return json.loads(stored, cls=codec.Decoder)


def test_model_fields_keep_a_malformed_tagged_value_as_stored() -> None:
    stored = '[{"__djqueue__": "decimal", "v": "x"}, {"__djqueue__": "decimal", "v": "1.5"}]'
    value = decoded_by_model_field(stored)
    assert value == [{"__djqueue__": "decimal", "v": "x"}, decimal.Decimal("1.5")]
    assert codec.has_undecoded(value)
    assert not codec.has_undecoded([decimal.Decimal("1.5"), {"a": [1]}])


def test_model_fields_keep_json_nested_too_deeply_as_its_text() -> None:
    stored = "[" * 5000 + "]" * 5000
    value = decoded_by_model_field(stored)
    assert isinstance(value, codec.Undecodable)
    assert value == stored
    assert codec.has_undecoded(value)
