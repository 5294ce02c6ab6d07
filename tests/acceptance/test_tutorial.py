"""Every code sample of the tutorial (docs/quickstart.md), run as written.

The page's files (code blocks that start with a ``# app/file.py`` line) are written into
a throwaway project; then its views are called, a real ``runworker`` runs the job, and
the page's shell snippets are run against that job.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.db import connection

from tests.acceptance.conftest import REPO_ROOT

PAGE = REPO_ROOT / "docs" / "quickstart.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)

SETTINGS = """
SECRET_KEY = "tutorial"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "djqueue", "orders"]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.postgresql", "NAME": {name!r},
    "USER": {user!r}, "HOST": {host!r}, "PORT": {port!r}}}}}
ROOT_URLCONF = "urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DJQUEUE = {{"POLL_INTERVAL_SECONDS": 0.2}}
"""

URLS = """
from django.urls import path

from orders import views

urlpatterns = [
    path("add/", views.start_add),
    path("jobs/<job_id>/", views.job_status),
]
"""

# Runs in the project: the views, then the page's "read the result" and shell samples.
SCRIPT = """
import json, os, subprocess, sys
import django
django.setup()
from django.test import Client

client = Client()
job = json.loads(client.get("/add/").content)["job"]
worker = subprocess.Popen([sys.executable, "manage.py", "runworker", "-P", "threads"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    namespace = {}
    exec(READ_SAMPLE.replace('"01942a6e-..."', repr(job)), namespace)
    assert namespace["result"].get(timeout=20) == 5
    status = json.loads(client.get(f"/jobs/{job}/").content)
    assert status == {"state": "SUCCESS", "result": 5}, status
finally:
    worker.terminate()
    worker.wait(timeout=30)
print("tutorial ok")
"""


def _samples() -> tuple[dict[str, str], list[str]]:
    """The page's files (by path) and its other Python samples, in page order."""
    files: dict[str, str] = {}
    snippets: list[str] = []
    for block in BLOCK.findall(PAGE.read_text()):
        first, _, rest = block.partition("\n")
        if re.fullmatch(r"# [\w/]+\.py", first.strip()):
            path = first.strip()[2:]
            files[path] = files.get(path, "") + "\n" + rest
        else:
            snippets.append(block)
    return files, snippets


@pytest.mark.django_db(transaction=True)
def test_every_tutorial_sample_runs(tmp_path: Path) -> None:
    files, snippets = _samples()
    assert set(files) == {"orders/tasks.py", "orders/views.py"}
    read_sample = next(s for s in snippets if "AsyncResult(" in s)
    shell_session = next(s for s in snippets if s.startswith(">>>"))
    (tmp_path / "orders").mkdir()
    (tmp_path / "orders" / "__init__.py").write_text("")
    (tmp_path / "orders" / "models.py").write_text("")
    for path, source in files.items():
        (tmp_path / path).write_text(source)
    database = connection.settings_dict
    (tmp_path / "settings.py").write_text(
        SETTINGS.format(
            name=database["NAME"],
            user=database["USER"],
            host=database["HOST"],
            port=str(database["PORT"]),
        )
    )
    (tmp_path / "urls.py").write_text(URLS)
    (tmp_path / "manage.py").write_text(
        "import os, sys\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'settings')\n"
        "from django.core.management import execute_from_command_line\n"
        "execute_from_command_line(sys.argv)\n"
    )
    (tmp_path / "run.py").write_text(f"READ_SAMPLE = {read_sample!r}\n{SCRIPT}")
    (tmp_path / "shell_session.txt").write_text(shell_session)
    env = {"DJANGO_SETTINGS_MODULE": "settings", "PYTHONPATH": f"{tmp_path}:{REPO_ROOT}"}
    done = subprocess.run(
        [sys.executable, "run.py"],
        cwd=tmp_path,
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tutorial ok" in done.stdout
    _run_shell_session(tmp_path, env)


def _run_shell_session(project: Path, env: dict[str, str]) -> None:
    """The page's ``>>>`` session, checked as a doctest inside the project."""
    check = textwrap.dedent(
        """
        import doctest, django
        django.setup()
        failures, _ = doctest.testfile("shell_session.txt", module_relative=False)
        raise SystemExit(1 if failures else 0)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", check],
        cwd=project,
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PG"))}
