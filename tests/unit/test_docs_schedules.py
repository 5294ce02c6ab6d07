"""The schedule examples of docs/periodic.md run, and say what they do."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import pytest

from djqueue import schedules

PAGE = Path(__file__).resolve().parents[2] / "docs" / "periodic.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _section(title: str) -> str:
    text = PAGE.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _blocks(title: str) -> list[str]:
    return BLOCK.findall(_section(title))


@pytest.mark.parametrize("code", _blocks("Schedules"))
def test_the_schedules_examples_run(code: str) -> None:
    exec(compile(code, str(PAGE), "exec"), {})  # the page's own examples


def test_the_examples_compute_what_their_comments_say() -> None:
    namespace: dict[str, Any] = {}
    code = _blocks("Schedules")[-1]  # the remaining_estimate / is_due example
    exec(compile(code, str(PAGE), "exec"), namespace)
    eight, last, now = namespace["eight"], namespace["last"], namespace["now"]
    assert eight.remaining_estimate(last, now=now) == datetime.timedelta(seconds=3600)
    assert eight.is_due(last, now=now) == schedules.schedstate(is_due=False, next=3600.0)
    assert "timedelta(seconds=3600)" in code and "schedstate(is_due=False, next=3600.0)" in code


def test_the_error_shown_is_the_error_raised() -> None:
    with pytest.raises(ValueError) as caught:
        schedules.crontab(hour="5 1")
    assert str(caught.value) in _section("Schedules")
