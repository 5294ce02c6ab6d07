"""Mistakes a type checker reports in code that uses djqueue, proven by running mypy.

Each case is a line of user code and the error mypy must give for it. They are checked
together in one mypy run (a few seconds), with the project's mypy settings.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# mypy comes with the lint extra (the types environment and the development setup).
pytest.importorskip("mypy")

ROOT = Path(__file__).resolve().parents[2]

PREAMBLE = """\
from typing import Any

import djqueue
from djqueue import Task, chain


@djqueue.task
def add(x: int, y: int) -> int:
    return x + y


@djqueue.task(bind=True)
def label(self: Task[Any, Any], name: str) -> str:
    return name


@djqueue.task
async def count(items: list[str]) -> int:
    return len(items)


"""

# (a line of code, the error mypy must report on it)
CASES = [
    (
        'add.delay("1", 2)',
        'Argument 1 to "delay" of "Task" has incompatible type "str"; expected "int"',
    ),
    ("add.delay(1)", 'Missing positional argument "y" in call to "delay" of "Task"'),
    ("add.delay(1, 2, 3)", 'Too many arguments for "delay" of "Task"'),
    ("add.delay(1, z=2)", 'Unexpected keyword argument "z" for "delay" of "Task"'),
    (
        'add.delay_on_commit(1, "2")',
        'Argument 2 to "delay_on_commit" of "Task" has incompatible type "str"; expected "int"',
    ),
    (
        'add(1, "2")',
        'Argument 2 to "__call__" of "Task" has incompatible type "str"; expected "int"',
    ),
    (
        "text: str = add.delay(1, 2).get()",
        'Incompatible types in assignment (expression has type "int", variable has type "str")',
    ),
    # A bound task's caller does not pass the task.
    ('label.delay(label, "x")', 'Too many arguments for "delay" of "Task"'),
    (
        'count.delay("abc")',
        'Argument 1 to "delay" of "Task" has incompatible type "str"; expected "list[str]"',
    ),
    ("add.s(1).delay(2).get().upper()", '"int" has no attribute "upper"'),
    # Sending options are one typed list (JobOptions), wherever they are taken.
    (
        'add.delay_many([(1, 2)], qeue="fast")',
        'Unexpected keyword argument "qeue" for "delay_many" of "Task"; did you mean "queue"?',
    ),
    (
        'add.apply_async_on_commit((1, 2), countdown="soon")',
        'Argument "countdown" to "apply_async_on_commit" of "Task" has incompatible type "str"; '
        'expected "float | timedelta | None"',
    ),
    (
        "chain(add.s(1, 2), label.s()).delay().get() + 1",
        'Unsupported operand types for + ("str" and "int")',
    ),
]

REPORTED = re.compile(r"^snippet\.py:(\d+): error: (.*?)(?:  \[[\w-]+\])?$")


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[str]]:
    """mypy's errors on a module made of the preamble and every case, by line."""
    folder = tmp_path_factory.mktemp("typing")
    (folder / "snippet.py").write_text(PREAMBLE + "".join(f"{code}\n" for code, _ in CASES))
    run = subprocess.run(
        [
            *(sys.executable, "-m", "mypy"),
            *("--config-file", str(ROOT / "setup.cfg")),
            *("--cache-dir", str(folder / "cache")),
            str(folder / "snippet.py"),
        ],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    errors: dict[int, list[str]] = {}
    for line in run.stdout.splitlines():
        found = REPORTED.match(line)
        if found:
            errors.setdefault(int(found[1]), []).append(found[2])
    assert errors, f"mypy reported no errors:\n{run.stdout}{run.stderr}"
    return errors


def test_the_preamble_is_clean(reported: dict[int, list[str]]) -> None:
    preamble = PREAMBLE.count("\n")
    assert {line: found for line, found in reported.items() if line <= preamble} == {}


@pytest.mark.parametrize(("index", "code", "error"), [(i, *case) for i, case in enumerate(CASES)])
def test_mypy_reports(reported: dict[int, list[str]], index: int, code: str, error: str) -> None:
    line = PREAMBLE.count("\n") + index + 1
    assert error in reported.get(line, []), f"{code!r} on line {line}: {reported.get(line)}"
