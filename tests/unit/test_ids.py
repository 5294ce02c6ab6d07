import uuid

import pytest

from djqueue.core import ids


def test_new_ids_are_version_7_and_ordered() -> None:
    made = [ids.new_id() for _ in range(5000)]
    assert all(value.version == 7 for value in made)
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_parse_accepts_uuid_and_text() -> None:
    value = uuid.uuid4()
    assert ids.parse(value) is value
    assert ids.parse(str(value)) == value


def test_parse_rejects_non_uuid_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="job id 'order-17' is not a UUID"):
        ids.parse("order-17")


def test_a_short_id_is_the_random_end_of_the_id() -> None:
    # Ids sent in the same millisecond share their start (the time); their ends differ.
    made = [ids.new_id() for _ in range(1000)]
    shown = {ids.short(value) for value in made}
    assert len(shown) == len(made)
    assert all(len(value) == ids.SHORT_DIGITS for value in shown)
    value = uuid.UUID("01a20b7e-d1ba-7000-8000-0123456789ab")
    assert ids.short(value) == ids.short(str(value)) == "0123456789ab"
