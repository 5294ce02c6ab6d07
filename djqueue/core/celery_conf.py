"""Celery's settings as a Django project spells them (``CELERY_TASK_ALWAYS_EAGER``...),
read and mapped onto djqueue's own.

A Django project configures Celery with ``app.config_from_object("django.conf:settings",
namespace="CELERY")``: every Celery setting, upper-cased with a ``CELERY_`` prefix. The
older names (``CELERY_ALWAYS_EAGER``, ``CELERYBEAT_SCHEDULE``, ``CELERYD_CONCURRENCY``...)
are read too. Each known name has a rule (:mod:`djqueue.core.celery_rules`): it sets
a djqueue setting, it already holds as djqueue works, it has no effect by design, or it
cannot be honoured (the system checks say what to do instead). This module reads the
project's settings and translates them.

``DJQUEUE`` wins over a Celery setting that says the same thing.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

from djqueue.core.celery_names import KNOWN, NOT_CELERY, OLD_NAMES, celery_name
from djqueue.core.celery_rules import Kind, Rule, rule


@dataclass(frozen=True)
class Found:
    """A Celery setting of the project: its Django name, Celery name and value."""

    setting: str
    name: str
    value: Any
    rule: Rule


def present() -> list[Found]:
    """The project's Celery settings that djqueue knows, by Django name."""
    found = []
    for setting in _celery_setting_names():
        name = celery_name(setting)
        if name is None:
            continue
        known = rule(name)
        if known is not None:
            found.append(Found(setting, name, getattr(settings, setting), known))
    return found


def unknown() -> list[tuple[str, str]]:
    """``CELERY*`` settings that are no Celery setting: (name, advice) pairs."""
    result = []
    for setting in _celery_setting_names():
        if celery_name(setting) is not None:
            continue
        advice = NOT_CELERY.get(setting) or _suggestion(setting)
        result.append((setting, advice))
    return result


def _suggestion(setting: str) -> str:
    candidates = sorted({f"CELERY_{name.upper()}" for name in KNOWN} | set(OLD_NAMES))
    close = difflib.get_close_matches(setting, candidates, n=1, cutoff=0.75)
    if close:
        return f"Did you mean {close[0]}?"
    return "Check the name against Celery's settings, or remove it."


def _celery_setting_names() -> list[str]:
    return sorted(name for name in dir(settings) if name.startswith("CELERY") and name.isupper())


_cache: dict[str, Any] | None = None


def mapped() -> dict[str, Any]:
    """djqueue settings set by the project's Celery settings: DJQUEUE key -> value.

    A new name wins over an old one that says the same thing; a value that cannot be
    honoured is left out (the system checks name it).
    """
    global _cache
    if _cache is None:
        _cache = _compute()
    return _cache


def _compute() -> dict[str, Any]:
    values: dict[str, Any] = {}
    # Old names first, so that a new name set beside its old one wins.
    ordered = sorted(present(), key=lambda found: found.setting not in OLD_NAMES)
    imports: list[str] = []
    for found in ordered:
        if found.rule.kind is not Kind.MAPPED or not found.rule.honoured(found.value):
            continue
        convert = found.rule.convert or (lambda value: value)
        value = convert(found.value)
        if found.rule.ours == "IMPORTS":  # imports and include add up
            imports.extend(name for name in value if name not in imports)
            values["IMPORTS"] = imports
            continue
        values[found.rule.ours] = value
    return values


def forget(**kwargs: Any) -> None:
    """Drop the cached mapping (settings changed, as in tests' override_settings)."""
    global _cache
    _cache = None


setting_changed.connect(forget, weak=False, dispatch_uid="djqueue.celery_conf")


def described(value: Any) -> str:
    """A short form of a setting's value for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def same(ours: Any, theirs: Any) -> bool:
    """Whether a DJQUEUE value and a converted Celery value say the same thing."""
    if isinstance(ours, Mapping) and isinstance(theirs, Mapping):
        return dict(ours) == dict(theirs)
    return bool(ours == theirs)
