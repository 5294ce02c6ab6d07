"""ROUTES (Celery's task_routes) and ANNOTATIONS (task_annotations), as a sender sees them."""

from __future__ import annotations

import re
from typing import Any

import pytest

import djqueue
from djqueue.client import routing
from djqueue.db.models import Job
from djqueue.ops import celery_checks
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def queue_of(result: Any) -> str:
    return str(Job.objects.get(pk=result.id).queue)


def test_routes_by_exact_name_and_glob(settings: Any) -> None:
    settings.CELERY_TASK_ROUTES = {
        "tests.testapp.tasks.add": {"queue": "maths"},
        "tests.testapp.tasks.*": {"queue": "testapp"},
    }
    assert queue_of(tasks.add.delay(1, 2)) == "maths"
    assert queue_of(tasks.noop.delay()) == "testapp"
    assert queue_of(djqueue.send_task("tests.testapp.tasks.echo")) == "testapp"


def test_the_call_and_the_task_win_over_routes(settings: Any) -> None:
    settings.DJQUEUE = {"ROUTES": {"*": "elsewhere"}}
    assert queue_of(tasks.add.apply_async((1, 2), queue="mine")) == "mine"
    assert queue_of(djqueue.send_task("custom.name")) == "special"  # task has queue=
    assert queue_of(tasks.add.delay(1, 2)) == "elsewhere"


def test_lists_of_routers_functions_and_priorities(settings: Any) -> None:
    def by_argument(name: str, args: Any, kwargs: Any, options: Any, **kw: Any) -> Any:
        if name == "tests.testapp.tasks.add" and args and args[0] > 100:
            return {"queue": "big", "priority": 7}
        return None

    settings.DJQUEUE = {
        "ROUTES": [
            by_argument,
            {"tests.testapp.tasks.add": {"queue": "small", "exchange": "ignored"}},
            [("tests.testapp.tasks.no*", "nothing")],
        ]
    }
    big = tasks.add.delay(1000, 1)
    assert (queue_of(big), Job.objects.get(pk=big.id).priority) == ("big", 7)
    assert queue_of(tasks.add.delay(1, 1)) == "small"
    assert queue_of(tasks.noop.delay()) == "nothing"
    assert queue_of(tasks.echo.delay()) == "default"


def test_routes_apply_to_workflows(settings: Any) -> None:
    settings.DJQUEUE = {"ROUTES": {"tests.testapp.tasks.add": {"queue": "maths"}}}
    result = djqueue.chain(tasks.add.s(1, 2), tasks.add.s(3)).apply_async()
    assert set(Job.objects.filter(workflow__isnull=False).values_list("queue", flat=True)) | {
        queue_of(result)
    } == {"maths"}


def test_a_dotted_path_names_a_router(settings: Any) -> None:
    settings.DJQUEUE = {"ROUTES": ["tests.integration.test_routing.everything_to_slow"]}
    assert queue_of(tasks.add.delay(1, 2)) == "slow"


def everything_to_slow(name: str, args: Any, kwargs: Any, options: Any, **kw: Any) -> str:
    return "slow"


@pytest.mark.parametrize(
    ("routes", "error"),
    [
        ({"x": {"queue": "q", "colour": "red"}}, "unknown key(s) ['colour']"),
        ([42], "ROUTES holds 42"),
        (["no.such.router"], "cannot be imported"),
        ([["not-a-pair"]], "(task name, route) pairs"),
    ],
)
def test_bad_routes_say_what_is_wrong(settings: Any, routes: Any, error: str) -> None:
    settings.DJQUEUE = {"ROUTES": routes}
    with pytest.raises(ValueError, match=re.escape(error)):
        routing.route("x", (), {})
    [message] = [m for m in celery_checks.check_routes() if m.id == "djqueue.E101"]
    assert error in message.msg


def test_annotations_set_task_options(settings: Any) -> None:
    settings.CELERY_TASK_ANNOTATIONS = {
        "tests.integration.test_routing.annotated": {"max_retries": 7, "rate_limit": "10/s"},
        "*": {"default_retry_delay": 5},
    }

    @djqueue.task(name="tests.integration.test_routing.annotated")
    def annotated() -> None:
        return None

    @djqueue.task(name="tests.integration.test_routing.other", max_retries=1)
    def other() -> None:
        return None

    assert (annotated.max_retries, annotated.rate_limit, annotated.default_retry_delay) == (
        7,
        "10/s",
        5,
    )
    assert annotated.rate is not None and annotated.rate.count == 10
    assert (other.max_retries, other.default_retry_delay) == (1, 5)
    assert Job.objects.get(pk=annotated.delay().id).max_attempts == 8


def test_annotations_with_an_option_tasks_do_not_take(settings: Any) -> None:
    settings.DJQUEUE = {"ANNOTATIONS": {"*": {"on_failure": print}}}
    with pytest.raises(ValueError, match="on_failure"):

        @djqueue.task(name="tests.integration.test_routing.unannotatable")
        def unannotatable() -> None:
            return None
