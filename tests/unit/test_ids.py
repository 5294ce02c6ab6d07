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
