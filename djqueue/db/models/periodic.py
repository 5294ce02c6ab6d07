"""Periodic tasks, their four kinds of schedule, and the runs they started.

Schedule state, not queue state: written by the admin, by ``runbeat``'s settings sync
and by the scheduler (see :mod:`djqueue.db.periodic`). The jobs they start are enqueued
by the broker, like any other job.
"""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from djqueue.core import codec, registry, schedules


class IntervalSchedule(models.Model):
    """Every N days, hours, minutes, seconds or microseconds."""

    DAYS, HOURS, MINUTES, SECONDS = "days", "hours", "minutes", "seconds"
    MICROSECONDS = "microseconds"
    PERIOD_CHOICES = [
        (DAYS, "Days"),
        (HOURS, "Hours"),
        (MINUTES, "Minutes"),
        (SECONDS, "Seconds"),
        (MICROSECONDS, "Microseconds"),
    ]
    PERIOD_MICROSECONDS = {
        DAYS: 86_400_000_000,
        HOURS: 3_600_000_000,
        MINUTES: 60_000_000,
        SECONDS: 1_000_000,
        MICROSECONDS: 1,
    }

    every = models.PositiveIntegerField(help_text="Number of periods between runs.")
    period = models.CharField(max_length=24, choices=PERIOD_CHOICES, default=SECONDS)

    class Meta:
        verbose_name = "interval"
        constraints = [
            models.CheckConstraint(condition=Q(every__gte=1), name="djqueue_interval_positive")
        ]

    def __str__(self) -> str:
        return f"every {schedules.duration(self.seconds)}"

    @property
    def seconds(self) -> float:
        """The interval in seconds."""
        return self.every * self.PERIOD_MICROSECONDS[self.period] / 1_000_000

    def schedule(self, anchor: datetime.datetime) -> schedules.Every:
        """The schedule, counted from ``anchor`` (the periodic task's start)."""
        return schedules.Every(self.seconds, anchor)


class CrontabSchedule(models.Model):
    """A crontab read in a time zone (fields, syntax and rules of Celery's ``crontab``)."""

    minute = models.CharField(
        max_length=240, default="*", help_text="0-59: '*', '0', '0,30', '10-20', '*/15'."
    )
    hour = models.CharField(
        max_length=96,
        default="*",
        help_text="0-23: '*', '8', '9-17', '22-2' (through midnight), '*/3'.",
    )
    day_of_week = models.CharField(
        max_length=64,
        default="*",
        help_text="0-6, Sunday is 0, or names: 'mon-fri', 'sat,sun'. "
        "A day must match this and the day of the month.",
    )
    day_of_month = models.CharField(
        max_length=124,
        default="*",
        help_text="1-31: '1', '1-7,15-21', '*/2'. A day must match this and the day of the week.",
    )
    month_of_year = models.CharField(
        max_length=64, default="*", help_text="1-12 or names: 'jan', 'nov-feb', '*/3'."
    )
    timezone = models.CharField(
        max_length=63, default="UTC", help_text="An IANA time zone, such as Europe/Paris."
    )

    class Meta:
        verbose_name = "crontab"

    def __str__(self) -> str:
        try:
            return self.schedule().describe()
        except ValueError:
            return f"invalid crontab {self.minute} {self.hour} {self.day_of_month} ..."

    def schedule(self) -> schedules.Crontab:
        """The schedule; raises ValueError when a field is invalid."""
        return schedules.crontab(
            self.minute,
            self.hour,
            self.day_of_week,
            self.day_of_month,
            self.month_of_year,
            self.timezone,
        )

    def clean(self) -> None:
        try:
            self.schedule()
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class ClockedSchedule(models.Model):
    """Once, at a moment."""

    clocked_time = models.DateTimeField()

    class Meta:
        verbose_name = "clocked"

    def __str__(self) -> str:
        return self.schedule().describe()

    def schedule(self) -> schedules.Clocked:
        return schedules.Clocked(aware(self.clocked_time))


class SolarSchedule(models.Model):
    """Daily at a sun event at a place."""

    EVENT_CHOICES = [
        ("dawn_astronomical", "Astronomical dawn"),
        ("dawn_nautical", "Nautical dawn"),
        ("dawn_civil", "Civil dawn"),
        ("sunrise", "Sunrise"),
        ("solar_noon", "Solar noon"),
        ("sunset", "Sunset"),
        ("dusk_civil", "Civil dusk"),
        ("dusk_nautical", "Nautical dusk"),
        ("dusk_astronomical", "Astronomical dusk"),
    ]

    event = models.CharField(max_length=24, choices=EVENT_CHOICES)
    latitude = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
    )
    longitude = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
    )

    class Meta:
        verbose_name = "solar event"
        constraints = [
            models.UniqueConstraint(
                fields=["event", "latitude", "longitude"], name="djqueue_solar_unique"
            )
        ]

    def __str__(self) -> str:
        return self.schedule().describe()

    def schedule(self) -> schedules.Solar:
        return schedules.solar(self.event, float(self.latitude), float(self.longitude))


class PeriodicTask(models.Model):
    """A task sent on a schedule by ``runbeat``: exactly one of the four schedules."""

    CATCH_UP_CHOICES = [
        (schedules.CATCH_UP_ONCE, "Once for the missed period"),
        (schedules.CATCH_UP_ALL, "Every missed run"),
        (schedules.CATCH_UP_SKIP, "Skip missed runs"),
    ]

    name = models.CharField(max_length=200, unique=True)
    task = models.CharField(max_length=255, help_text="A registered task name.")
    interval = models.ForeignKey(IntervalSchedule, on_delete=models.CASCADE, null=True, blank=True)
    crontab = models.ForeignKey(CrontabSchedule, on_delete=models.CASCADE, null=True, blank=True)
    solar = models.ForeignKey(SolarSchedule, on_delete=models.CASCADE, null=True, blank=True)
    clocked = models.ForeignKey(ClockedSchedule, on_delete=models.CASCADE, null=True, blank=True)
    args = models.JSONField(default=list, blank=True, encoder=codec.Encoder, decoder=codec.Decoder)
    kwargs = models.JSONField(
        default=dict, blank=True, encoder=codec.Encoder, decoder=codec.Decoder
    )
    queue = models.CharField(
        max_length=100, blank=True, default="", help_text="Empty: the task's own queue."
    )
    priority = models.SmallIntegerField(
        null=True, blank=True, help_text="Empty: the task's own priority."
    )
    expires = models.DateTimeField(
        null=True, blank=True, help_text="Jobs sent after this moment expire at it."
    )
    expire_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Each job expires this many seconds after it is sent."
    )
    enabled = models.BooleanField(default=True)
    one_off = models.BooleanField(default=False, help_text="Run once, then disable.")
    start_time = models.DateTimeField(
        null=True, blank=True, help_text="No run before this moment (empty: from creation)."
    )
    catch_up = models.CharField(
        max_length=8,
        choices=CATCH_UP_CHOICES,
        default=schedules.CATCH_UP_ONCE,
        help_text="What to do about runs missed while no scheduler was running.",
    )
    # The latest slot handled: run, or passed over under the "skip" policy. The next
    # slot is computed from it, never from the current time.
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    total_run_count = models.PositiveIntegerField(default=0, editable=False)
    description = models.TextField(blank=True, default="")
    # Rows made from DJQUEUE["BEAT_SCHEDULE"] by runbeat's sync; the sync never touches
    # other rows.
    from_settings = models.BooleanField(default=False, editable=False)
    date_created = models.DateTimeField(default=timezone.now, editable=False)
    date_changed = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "periodic task"
        permissions = [("run_periodictask", "Can run periodic tasks now")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(interval__isnull=False, crontab=None, solar=None, clocked=None)
                    | Q(interval=None, crontab__isnull=False, solar=None, clocked=None)
                    | Q(interval=None, crontab=None, solar__isnull=False, clocked=None)
                    | Q(interval=None, crontab=None, solar=None, clocked__isnull=False)
                ),
                name="djqueue_periodictask_one_schedule",
                violation_error_message=(
                    "Choose exactly one schedule: an interval, a crontab, a solar event "
                    "or a clocked time."
                ),
            ),
            models.CheckConstraint(
                condition=Q(catch_up__in=schedules.CATCH_UP_POLICIES),
                name="djqueue_periodictask_catch_up",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.task and self.task not in registry.names():
            raise ValidationError(
                {"task": f"{self.task!r} is not a registered task; choose one of the list."}
            )

    @property
    def schedule_row(self) -> models.Model | None:
        """The one schedule row this task uses."""
        return self.interval or self.crontab or self.solar or self.clocked

    def schedule(self) -> schedules.Schedule:
        """The schedule object; raises ValueError when the row is invalid."""
        if self.interval is not None:
            return self.interval.schedule(self.anchor)
        if self.crontab is not None:
            return self.crontab.schedule()
        if self.solar is not None:
            return self.solar.schedule()
        if self.clocked is not None:
            return self.clocked.schedule()
        raise ValueError(f"periodic task {self.name!r} has no schedule")

    @property
    def anchor(self) -> datetime.datetime:
        """Where the task's slots start: its start time, or else its creation.

        Whole seconds, so that an interval's runs fall on whole seconds too.
        """
        return aware(self.start_time or self.date_created).replace(microsecond=0)


class PeriodicRun(models.Model):
    """One slot of a periodic task that was enqueued, with its job.

    The unique (periodic task, slot) pair is what makes double firing impossible: the
    job is enqueued in the same transaction that inserts this row, and only if it did.
    """

    periodic_task = models.ForeignKey(PeriodicTask, on_delete=models.CASCADE, related_name="runs")
    slot = models.DateTimeField()
    job_id = models.UUIDField()
    enqueued_at = models.DateTimeField()

    class Meta:
        verbose_name = "periodic run"
        constraints = [
            models.UniqueConstraint(
                fields=["periodic_task", "slot"], name="djqueue_periodicrun_unique_slot"
            )
        ]
        indexes = [models.Index(fields=["enqueued_at"], name="djqueue_periodicrun_enqueued")]

    def __str__(self) -> str:
        return f"{self.periodic_task_id} at {self.slot.isoformat()}"


def aware(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` as an aware datetime (naive ones, with USE_TZ = False, are local)."""
    if timezone.is_naive(moment):
        return timezone.make_aware(moment, timezone.get_default_timezone())
    return moment
