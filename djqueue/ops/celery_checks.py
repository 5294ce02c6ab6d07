"""System checks for the Celery settings a project brings along (``CELERY_*``).

- ``djqueue.W101``: a Celery setting djqueue cannot honour, with what to do instead.
- ``djqueue.I101``: a Celery setting that has no effect by design (broker, result
  backend, logging...), safe to remove.
- ``djqueue.W102``: a ``CELERY_*`` name that is no Celery setting (a typo, with a
  suggestion).
- ``djqueue.W103``: a Celery setting and its ``DJQUEUE`` key both set to different
  values; ``DJQUEUE`` wins.
- ``djqueue.E101``: ``ROUTES`` (or ``CELERY_TASK_ROUTES``) in a form that cannot route.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from djqueue.client import routing
from djqueue.core import celery_conf, celery_rules, conf


def check_celery_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """One message per Celery setting that is not simply honoured, or is overridden."""
    messages: list[checks.CheckMessage] = []
    ours: dict[str, Any] = getattr(settings, "DJQUEUE", {}) or {}
    for found in celery_conf.present():
        messages.extend(_messages(found, ours))
    messages.extend(
        checks.Warning(
            f"{setting} is not a Celery setting; djqueue ignores it.",
            hint=advice,
            id="djqueue.W102",
        )
        for setting, advice in celery_conf.unknown()
    )
    return messages


def _messages(found: celery_conf.Found, ours: dict[str, Any]) -> list[checks.CheckMessage]:
    rule, shown = found.rule, celery_conf.described(found.value)
    if rule.kind is celery_rules.Kind.IGNORED:
        return [
            checks.Info(
                f"{found.setting} has no effect with djqueue.", hint=rule.advice, id="djqueue.I101"
            )
        ]
    if not rule.honoured(found.value):
        return [
            checks.Warning(
                f"{found.setting} = {shown} is not honoured by djqueue.",
                hint=rule.advice or "Remove it.",
                id="djqueue.W101",
            )
        ]
    if rule.kind is celery_rules.Kind.MAPPED and rule.ours in ours:
        convert = rule.convert or (lambda value: value)
        if not celery_conf.same(ours[rule.ours], convert(found.value)):
            return [
                checks.Warning(
                    f"{found.setting} = {shown} and DJQUEUE[{rule.ours!r}] = "
                    f"{celery_conf.described(ours[rule.ours])} are both set; "
                    f"DJQUEUE[{rule.ours!r}] wins.",
                    hint=f"Remove {found.setting}, or make the two agree.",
                    id="djqueue.W103",
                )
            ]
    return []


def check_routes(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``ROUTES`` must compile, and the routes of a dict must be routes."""
    try:
        routers = routing.compile_routes(conf.get("ROUTES"))
        for router in routers:
            if isinstance(router, routing.MapRouter):
                for value in [*router.exact.values(), *(r for _, r in router.patterns)]:
                    routing.route_value(value, "ROUTES")
    except ValueError as exc:
        return [
            checks.Error(
                str(exc),
                hint="See the forms ROUTES takes in docs/calling.md (Routing).",
                id="djqueue.E101",
            )
        ]
    return []
