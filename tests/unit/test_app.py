"""``djqueue.App``: a Celery project's ``proj/celery.py`` runs with its import changed
(``from djqueue import App as Celery``); what djqueue cannot honour is refused, saying
what to do. (tests/acceptance/test_celery_project.py runs such a file in a project.)"""

from __future__ import annotations

import pytest
from django.conf import settings

import djqueue
from djqueue import control
from djqueue.client import app as app_module
from djqueue.core import registry


def test_the_app_module_of_a_django_project_runs() -> None:
    app = djqueue.App("proj")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.config_from_object(settings, namespace="CELERY")
    app.autodiscover_tasks()
    app.autodiscover_tasks(lambda: settings.INSTALLED_APPS)
    assert app.main == "proj" and "proj" in repr(app)
    assert app.control.inspect is control.inspect and app.control.revoke is control.revoke
    assert app.AsyncResult is djqueue.AsyncResult and app.GroupResult is djqueue.GroupResult


@pytest.mark.parametrize(
    ("obj", "namespace"),
    [("django.conf:settings", None), ("proj.celeryconfig", "CELERY"), ("x:y", "CELERY")],
)
def test_other_configuration_sources_are_refused(obj: str, namespace: str | None) -> None:
    with pytest.raises(ValueError, match="CELERY_ prefix"):
        djqueue.App("proj").config_from_object(obj, namespace=namespace)


def test_other_task_modules_are_refused_with_what_to_do() -> None:
    with pytest.raises(ValueError, match="CELERY_IMPORTS"):
        djqueue.App().autodiscover_tasks(related_name="jobs")


def test_app_options_djqueue_has_no_use_for_are_refused() -> None:
    djqueue.App("proj", broker="redis://", backend="redis://")  # no effect, as the settings
    with pytest.raises(TypeError, match="CELERY_IMPORTS"):
        djqueue.App("proj", include=["proj.tasks"])


def test_app_task_made_once_the_apps_are_ready() -> None:
    app = djqueue.App("proj")

    def ping(self: object) -> str:
        return "pong"

    ping.__module__ = "proj.celery"
    made = app.task(bind=True, name="proj.celery.ping")(ping)
    assert isinstance(made, djqueue.Task)  # the apps are ready: made at once
    assert registry.get("proj.celery.ping") is made
    assert made.apply().get() == "pong"


def test_an_app_task_declared_before_the_apps_are_ready_waits_for_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.apps import apps

    monkeypatch.setattr(apps, "ready", False)

    def hello() -> str:
        return "hello"

    hello.__module__, hello.__qualname__ = "proj.celery", "hello"
    declared = djqueue.App().task(hello)
    assert isinstance(declared, app_module.LazyTask)
    assert registry.find("proj.celery.hello") is None
    monkeypatch.setattr(apps, "ready", True)
    app_module.make_pending_tasks()  # what djqueue's app does when it is ready
    assert registry.find("proj.celery.hello") is not None
    assert declared.name == "proj.celery.hello" and declared() == "hello"
    assert declared.apply().get() == "hello"


def test_an_app_task_declared_after_djqueue_was_ready_is_found_by_its_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another app's ready() ran after djqueue's: the registry still finds the task.
    from django.apps import apps

    monkeypatch.setattr(apps, "ready", False)

    def late(x: int) -> int:
        return x + 1

    late.__module__, late.__qualname__ = "proj.jobs", "late"
    declared = djqueue.App().task(late)
    other = djqueue.App().task(name="proj.jobs.other")(lambda: None)
    monkeypatch.setattr(apps, "ready", True)
    assert registry.get("proj.jobs.late").apply((1,)).get() == 2
    assert declared(1) == 2
    # Only the task asked for was made; the other is made when asked for in turn.
    assert registry.find("proj.jobs.other") is None
    assert registry.get("proj.jobs.other") is other._made()
