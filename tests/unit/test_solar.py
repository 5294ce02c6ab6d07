"""Solar schedules: Celery's events, names and arguments."""

import datetime

import pytest

from djqueue import schedules
from djqueue.models import SolarSchedule

UTC = datetime.UTC
PARIS = (48.8566, 2.3522)


def test_sunrise_in_paris_on_the_longest_day() -> None:
    sunrise = schedules.solar("sunrise", *PARIS)
    slot = sunrise.next_after(datetime.datetime(2026, 6, 21, tzinfo=UTC))
    # 05:47 in Paris (UTC+2), to the second, rounded up.
    assert slot == datetime.datetime(2026, 6, 21, 3, 46, 59, tzinfo=UTC)
    assert sunrise.last_at_or_before(slot) == slot
    assert sunrise.next_after(slot) == datetime.datetime(2026, 6, 22, 3, 47, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event", "time"),
    [
        ("dawn_astronomical", "02:48:02"),  # the sun's centre 18° below the horizon
        ("dawn_nautical", "03:34:39"),  # 12°
        ("dawn_civil", "04:16:28"),  # 6°
        ("sunrise", "04:50:18"),  # its upper edge 34' below the horizon
        ("solar_noon", "11:49:29"),
        ("sunset", "18:49:41"),
        ("dusk_civil", "19:23:40"),
        ("dusk_nautical", "20:05:46"),
        ("dusk_astronomical", "20:52:51"),
    ],
)
def test_every_event_of_a_spring_day_in_paris(event: str, time: str) -> None:
    slot = schedules.solar(event, *PARIS).next_after(datetime.datetime(2026, 4, 20, tzinfo=UTC))
    assert slot is not None and slot.date() == datetime.date(2026, 4, 20)
    assert slot.time().isoformat() == time  # UTC; Paris is two hours ahead


def test_events_come_in_the_order_of_the_day() -> None:
    start = datetime.datetime(2026, 4, 20, tzinfo=UTC)
    slots = [schedules.solar(event, *PARIS).next_after(start) for event in schedules.SOLAR_EVENTS]
    assert slots == sorted(slots)  # type: ignore[type-var]


def test_celery_arguments_and_earlier_names() -> None:
    melbourne = schedules.solar("sunset", -37.81, 144.96)
    assert (melbourne.lat, melbourne.lon) == (-37.81, 144.96)
    assert schedules.solar(event="sunset", lat=-37.81, lon=144.96) == melbourne
    # Earlier releases' names and keywords still work and mean the same.
    assert schedules.solar("sunset", latitude=-37.81, longitude=144.96) == melbourne
    assert schedules.solar("dawn", *PARIS).event == "dawn_civil"
    assert schedules.solar("noon", *PARIS).event == "solar_noon"
    assert schedules.solar("dusk", *PARIS).event == "dusk_civil"


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown solar event 'moonrise'; use one of dawn_astro"):
        schedules.solar("moonrise", 0, 0)
    with pytest.raises(ValueError, match=r"latitude \(lat\) must be within ±90"):
        schedules.solar("sunset", 91, 0)
    with pytest.raises(TypeError, match="give lat or latitude, not both"):
        schedules.solar("sunset", 1, 2, latitude=1)
    with pytest.raises(TypeError, match=r"solar\(\) needs lon"):
        schedules.solar("sunset", 1)


def test_polar_night_waits_for_the_sun() -> None:
    # Longyearbyen: no sunrise from late October to mid February.
    sunrise = schedules.solar("sunrise", 78.22, 15.65)
    slot = sunrise.next_after(datetime.datetime(2026, 11, 15, tzinfo=UTC))
    assert slot is not None and slot.date() == datetime.date(2027, 2, 16)
    # Solar noon happens every day, even then.
    noon = schedules.solar("solar_noon", 78.22, 15.65)
    slot = noon.next_after(datetime.datetime(2026, 11, 15, tzinfo=UTC))
    assert slot is not None and slot.date() == datetime.date(2026, 11, 15)


def test_the_stored_model_offers_celerys_events() -> None:
    assert [value for value, _ in SolarSchedule.EVENT_CHOICES] == list(schedules.SOLAR_EVENTS)
    row = SolarSchedule(event="solar_noon", latitude=48.8566, longitude=2.3522)
    assert row.schedule() == schedules.solar("solar_noon", 48.8566, 2.3522)
