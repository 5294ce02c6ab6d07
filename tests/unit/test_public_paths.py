"""Every documented import path still works after the package was split into layers."""

import importlib
import subprocess
import sys

import pytest

import djqueue

# (documented path, a name it gives, the module that defines it)
DOCUMENTED = [
    ("djqueue.admin", "JobAdmin", "djqueue.ops.admin"),
    ("djqueue.admin", "WorkerAdmin", "djqueue.ops.worker_admin"),
    ("djqueue.admin", "QueueAdmin", "djqueue.ops.queue_admin"),
    ("djqueue.models", "Job", "djqueue.db.models"),
    ("djqueue.models", "PeriodicTask", "djqueue.db.models"),
    ("djqueue.urls", "urlpatterns", "djqueue.ops.urls"),
    ("djqueue.views", "job_status", "djqueue.ops.views"),
    ("djqueue.testing", "run_pending", "djqueue.integrations.testing"),
    ("djqueue.pytest_plugin", "djqueue_jobs", "djqueue.integrations.pytest_plugin"),
    ("djqueue.schedules", "crontab", "djqueue.core.schedules"),
    ("djqueue.result", "AsyncResult", "djqueue.client.result"),
    ("djqueue.result", "GroupResult", "djqueue.client.result_set"),
    ("djqueue.result", "ResultSet", "djqueue.client.result_set"),
    ("djqueue.result", "allow_join_result", "djqueue.client.joining"),
    ("djqueue.result", "denied_join_result", "djqueue.client.joining"),
    ("djqueue.exceptions", "SoftTimeLimitExceeded", "djqueue.core.exceptions"),
    ("djqueue.signals", "task_success", "djqueue.core.signals"),
    ("djqueue.signals", "before_task_publish", "djqueue.core.signals"),
    ("djqueue.control", "inspect", "djqueue.client.control"),
    ("djqueue.control", "revoke", "djqueue.client.control"),
    ("djqueue.states", "SUCCESS", "djqueue.core.states"),
    ("djqueue.codec", "loads", "djqueue.core.codec"),
    ("djqueue.gevent_patch", "patch_if_requested", "djqueue.runtime.gevent_patch"),
    ("djqueue.gevent_worker", "main", "djqueue.runtime.gevent_worker"),
    ("djqueue.periodic", "notify_changed", "djqueue.db.periodic"),
]


@pytest.mark.parametrize(("path", "name", "home"), DOCUMENTED)
def test_documented_path_gives_the_same_object(path: str, name: str, home: str) -> None:
    assert getattr(importlib.import_module(path), name) is getattr(
        importlib.import_module(home), name
    )


@pytest.mark.parametrize("name", djqueue.__all__)
def test_top_level_api(name: str) -> None:
    assert getattr(djqueue, name) is not None


def test_stored_error_types_name_the_documented_module() -> None:
    from djqueue.exceptions import TimeLimitExceeded

    assert TimeLimitExceeded.__module__ == "djqueue.exceptions"


def test_gevent_patch_imports_no_django() -> None:
    # A manage.py imports it before Django: it must not pull Django or psycopg in.
    code = (
        "import sys, djqueue.gevent_patch; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'psycopg')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
