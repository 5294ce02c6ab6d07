"""Solar schedules: daily at a sun event at a place, computed with PyEphem as Celery
computes them."""

from __future__ import annotations

import datetime
import typing
from dataclasses import dataclass

import ephem

from djqueue.core.schedules.base import UTC, CeleryChecks, aware

# Celery's events: (the horizon the sun crosses, which crossing, whether its centre or its
# upper edge counts). No atmospheric refraction is modelled; sunrise and sunset take the
# upper edge 34 arc minutes below the horizon, as a stand-in for it.
_SOLAR: dict[str, tuple[str, str, bool]] = {
    "dawn_astronomical": ("-18", "rising", True),
    "dawn_nautical": ("-12", "rising", True),
    "dawn_civil": ("-6", "rising", True),
    "sunrise": ("-0:34", "rising", False),
    "solar_noon": ("0", "transit", False),
    "sunset": ("-0:34", "setting", False),
    "dusk_civil": ("-6", "setting", True),
    "dusk_nautical": ("-12", "setting", True),
    "dusk_astronomical": ("-18", "setting", True),
}
SOLAR_EVENTS = tuple(_SOLAR)
# Names of earlier releases, read as the event they meant.
SOLAR_ALIASES = {"dawn": "dawn_civil", "noon": "solar_noon", "dusk": "dusk_civil"}
# How many days a search for an event goes on before there is none (polar day or night
# can hide an event for months, never for a whole year).
SOLAR_SEARCH_DAYS = 366
SECOND = datetime.timedelta(seconds=1)


@dataclass(frozen=True)
class Solar(CeleryChecks):
    """Daily at a sun event at a place: ``solar("sunset", -37.81, 144.96)``.

    Events, names and arguments are Celery's, and so is the astronomy (PyEphem with
    Celery's horizons). A slot is the event's time rounded up to the whole second, so
    that it never comes before the event and is the same however it was computed.
    """

    event: str
    lat: float
    lon: float

    def __post_init__(self) -> None:
        event = SOLAR_ALIASES.get(self.event, self.event)
        if event not in _SOLAR:
            raise ValueError(
                f"unknown solar event {self.event!r}; use one of {', '.join(SOLAR_EVENTS)}"
            )
        object.__setattr__(self, "event", event)
        if not -90 <= self.lat <= 90 or not -180 <= self.lon <= 180:
            raise ValueError(
                f"latitude (lat) must be within ±90 and longitude (lon) within ±180, not "
                f"({self.lat}, {self.lon})"
            )

    @property
    def latitude(self) -> float:
        return self.lat

    @property
    def longitude(self) -> float:
        return self.lon

    def next_after(self, slot: datetime.datetime) -> datetime.datetime | None:
        start = aware(slot).astimezone(UTC)
        found = self._search(start, forward=True)
        while found is not None:
            rounded = _ceil(self._settled(found))
            if rounded > start:
                return rounded
            # The same event, already taken as a slot: the next one.
            found = self._search(found + datetime.timedelta(minutes=1), forward=True)
        return None

    def last_at_or_before(self, moment: datetime.datetime) -> datetime.datetime | None:
        end = aware(moment).astimezone(UTC)
        found = self._search(end, forward=False)
        while found is not None:
            rounded = _ceil(self._settled(found))
            if rounded <= end:
                return rounded
            found = self._search(found - datetime.timedelta(minutes=1), forward=False)
        return None

    def _settled(self, found: datetime.datetime) -> datetime.datetime:
        """``found`` computed again from a fixed start, so that it does not vary by the
        hundredths of a second that depend on where a search began."""
        start = found.replace(minute=0, second=0, microsecond=0) - datetime.timedelta(hours=2)
        settled = self._search(start, forward=True)
        if settled is None or abs(settled - found) > datetime.timedelta(minutes=10):
            return found
        return settled

    def _search(self, start: datetime.datetime, forward: bool) -> datetime.datetime | None:
        """The first event after (or before) ``start``, as Celery's ephem search finds it."""
        horizon, crossing, centre = _SOLAR[self.event]
        observer = ephem.Observer()
        observer.lat, observer.lon = str(self.lat), str(self.lon)
        observer.elev, observer.pressure, observer.horizon = 0, 0, horizon
        when = ephem.Date(start.replace(tzinfo=None))
        observer.date = when
        find = getattr(observer, f"{'next' if forward else 'previous'}_{crossing}")
        step = observer.next_antitransit if forward else observer.previous_antitransit
        options = {"use_center": True} if centre else {}
        sun = ephem.Sun()
        for _ in range(SOLAR_SEARCH_DAYS):
            try:
                found = find(sun, start=when, **options)
            except ephem.CircumpolarError:  # not that day (polar day or night): the next
                when = step(sun, start=when)
                continue
            return typing.cast(datetime.datetime, found.datetime()).replace(tzinfo=UTC)
        return None

    def describe(self) -> str:
        return f"at {self.event} at ({self.lat:g}, {self.lon:g})"


def _ceil(moment: datetime.datetime) -> datetime.datetime:
    if moment.microsecond:
        return moment.replace(microsecond=0) + SECOND
    return moment


def solar(
    event: str,
    lat: float | None = None,
    lon: float | None = None,
    *,
    latitude: float | None = None,
    longitude: float | None = None,
) -> Solar:
    """A daily schedule at a sun event, with Celery's arguments: ``solar(event, lat, lon)``.

    ``latitude`` and ``longitude`` are accepted for ``lat`` and ``lon``, as earlier
    releases named them.
    """
    lat = _one_of("lat", lat, "latitude", latitude)
    lon = _one_of("lon", lon, "longitude", longitude)
    return Solar(event, float(lat), float(lon))


def _one_of(name: str, value: float | None, alias: str, other: float | None) -> float:
    if value is not None and other is not None:
        raise TypeError(f"give {name} or {alias}, not both")
    if value is None and other is None:
        raise TypeError(f"solar() needs {name} (degrees)")
    return value if value is not None else typing.cast(float, other)
