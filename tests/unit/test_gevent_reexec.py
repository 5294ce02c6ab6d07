"""The command line that starts ``runworker --pool gevent`` again, patched first."""

from __future__ import annotations

import os

import pytest

from djqueue.runtime import gevent_reexec

PY = "/venv/bin/python"
ARGS = ["runworker", "--pool", "gevent", "-c", "50"]
AGAIN = ["-m", "djqueue.runtime.gevent_reexec"]


def test_a_script_runs_again_from_its_full_path() -> None:
    command = gevent_reexec.command([PY, "manage.py", *ARGS], ["manage.py", *ARGS], PY)
    assert command == [PY, *AGAIN, "script", os.path.abspath("manage.py"), *ARGS]


def test_interpreter_options_are_kept() -> None:
    orig = [PY, "-X", "dev", "-W", "error", "/srv/app/manage.py", *ARGS]
    command = gevent_reexec.command(orig, ["/srv/app/manage.py", *ARGS], PY)
    assert command == [
        PY,
        "-X",
        "dev",
        "-W",
        "error",
        *AGAIN,
        "script",
        "/srv/app/manage.py",
        *ARGS,
    ]


@pytest.mark.parametrize("given", [["-m", "django"], ["-mdjango"]])
def test_a_module_runs_again_as_a_module(given: list[str]) -> None:
    command = gevent_reexec.command([PY, "-u", *given, *ARGS], ["/x/django/__main__.py", *ARGS], PY)
    assert command == [PY, "-u", *AGAIN, "module", "django", *ARGS]


def test_a_console_script_runs_again_as_a_script() -> None:
    orig = [PY, "/venv/bin/django-admin", *ARGS]
    command = gevent_reexec.command(orig, ["/venv/bin/django-admin", *ARGS], PY)
    assert command == [PY, *AGAIN, "script", "/venv/bin/django-admin", *ARGS]


@pytest.mark.parametrize(
    ("orig", "argv"),
    [
        ([PY, "-c", "run()", *ARGS], ["-c", *ARGS]),  # code given inline
        ([PY, "manage.py", "runworker"], ["manage.py", *ARGS]),  # argv changed since
        ([PY], [""]),  # the interactive interpreter
    ],
)
def test_programs_that_cannot_run_again(orig: list[str], argv: list[str]) -> None:
    assert gevent_reexec.command(orig, argv, PY) is None
