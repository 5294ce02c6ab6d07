"""The periodic task form of the admin: the task picked from the registry, arguments
as JSON that must decode, and the values checked as a send of the task would check them."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from djqueue.core import codec, registry
from djqueue.core.exceptions import DjqueueError
from djqueue.db.models import (
    PeriodicTask,
)
from djqueue.ops import run_guard


def _task_choices() -> list[tuple[str, str]]:
    return [("", "---------"), *((name, name) for name in registry.names())]


class JSONText(forms.JSONField):
    """A JSON field whose error says what is wrong with the text and where."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.strip() and not self.disabled:
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValidationError(
                    "Not valid JSON: %(problem)s at line %(line)d, column %(column)d.",
                    code="invalid",
                    params={"problem": exc.msg, "line": exc.lineno, "column": exc.colno},
                ) from None
        return super().to_python(value)


class PeriodicTaskForm(run_guard.GuardedForm):
    """The periodic task form: registered tasks only, JSON arguments checked as a send."""

    task = forms.ChoiceField(
        choices=_task_choices, help_text="Tasks registered by the installed apps."
    )
    args = JSONText(
        required=False,
        encoder=codec.Encoder,
        decoder=codec.Decoder,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='Positional arguments as a JSON list, such as [1, "two"].',
    )
    kwargs = JSONText(
        required=False,
        encoder=codec.Encoder,
        decoder=codec.Decoder,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='Keyword arguments as a JSON object, such as {"report": "daily"}.',
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.from_settings:
            self.fields["name"].help_text = (
                "Made from BEAT_SCHEDULE in settings: runbeat puts the settings back "
                "when it starts, so change them there."
            )

    class Meta:
        model = PeriodicTask
        fields = [
            "name",
            "task",
            "enabled",
            "description",
            "interval",
            "crontab",
            "solar",
            "clocked",
            "start_time",
            "one_off",
            "args",
            "kwargs",
            "queue",
            "priority",
            "expires",
            "expire_seconds",
            "catch_up",
        ]

    def clean_args(self) -> list[Any]:
        value = self.cleaned_data.get("args")
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValidationError('args must be a JSON list, such as [1, "two"].')
        return value

    def clean_kwargs(self) -> dict[str, Any]:
        value = self.cleaned_data.get("kwargs")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValidationError('kwargs must be a JSON object, such as {"report": "daily"}.')
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        name = data.get("task")
        if name and "args" in data and "kwargs" in data:
            try:
                # The same checks as a send: JSON types, payload size, queue, priority.
                registry.get(name).prepare(
                    data["args"],
                    data["kwargs"],
                    queue=data.get("queue") or None,
                    priority=data.get("priority"),
                )
            except (DjqueueError, KeyError, ValueError, TypeError) as exc:
                message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
                raise ValidationError(
                    f"This task cannot be sent with these values: {message}"
                ) from None
        return data
