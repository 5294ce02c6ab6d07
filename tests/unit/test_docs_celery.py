"""The examples of docs/celery-migration.md and of Routing in docs/calling.md run, and say
what djqueue does."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from djqueue.client import routing
from djqueue.core import celery_rules, conf
from djqueue.ops import celery_checks

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.DOTALL)


def _section(page: str, title: str) -> str:
    text = (DOCS / page).read_text()
    start = text.index(f"\n## {title}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _blocks(page: str, title: str, kind: str = "python") -> list[str]:
    return [code for found, code in BLOCK.findall(_section(page, title)) if found == kind]


def _settings(code: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs", "exec"), namespace)  # the page's own example
    return {key: value for key, value in namespace.items() if key.isupper()}


def test_the_celery_settings_example_gives_the_check_output_shown() -> None:
    [code] = _blocks("celery-migration.md", "Settings")
    [shown] = _blocks("celery-migration.md", "Settings", "text")
    with override_settings(**_settings(code)):
        printed = "".join(
            f"?: ({m.id}) {m.msg}\n\tHINT: {m.hint}\n"
            for m in sorted(celery_checks.check_celery_settings(), key=lambda m: (m.id, m.msg))
        )
        assert printed == shown
        assert conf.get("ROUTES") == {"shop.tasks.*": {"queue": "shop"}}
        assert (conf.get("TIME_LIMIT"), conf.get("SOFT_TIME_LIMIT")) == (300.0, 240.0)
        assert (conf.get("PREFETCH_MULTIPLIER"), conf.get("RESULT_RETENTION_SECONDS")) == (1, 3600)


def test_the_settings_table_says_what_the_rules_do() -> None:
    rows = re.findall(
        r"^\| `CELERY_([A-Z_]+)` \| (.*?) \| (.*?) \|",
        _section("celery-migration.md", "Settings"),
        re.M,
    )
    assert {name.lower() for name, _, _ in rows} == set(celery_rules.RULES)
    for name, ours, status in rows:
        rule = celery_rules.RULES[name.lower()]
        if rule.kind is celery_rules.Kind.MAPPED:
            assert (ours, status) == (f"`{rule.ours}`", "honoured")
        elif rule.kind is celery_rules.Kind.HOLDS:
            assert status.startswith("honoured")
        elif rule.kind is celery_rules.Kind.IGNORED:
            assert status == "no effect (I101)"
        else:
            assert status == "warning (W101)"


def test_the_routing_examples_route_as_they_say(settings: Any) -> None:
    first, second = _blocks("calling.md", "Routing")
    settings.DJQUEUE = _settings(first)["DJQUEUE"]
    assert routing.route("shop.tasks.charge", (), {}) == routing.Route("payments", 10)
    assert routing.route("shop.tasks.refund", (), {}) == routing.Route("shop")
    assert routing.route("reports.tasks.daily", (), {}) == routing.Route("reports")
    settings.DJQUEUE = _settings(second)["DJQUEUE"]
    assert routing.route("shop.tasks.export", (), {"rows": 20_000}) == routing.Route("bulk")
    assert routing.route("shop.tasks.export", (), {"rows": 5}) == routing.Route("shop")


def test_the_annotations_and_imports_examples_are_settings_djqueue_reads(settings: Any) -> None:
    [annotations] = _blocks("calling.md", "Annotations")
    [imports] = _blocks("calling.md", "Tasks outside tasks.py")
    for code in (annotations, imports):
        settings.DJQUEUE = _settings(code)["DJQUEUE"]
        assert set(settings.DJQUEUE) <= set(conf.DEFAULTS)


@pytest.mark.parametrize("page", ["settings.md", "celery-migration.md", "calling.md"])
def test_the_pages_name_only_settings_that_exist(page: str) -> None:
    text = (DOCS / page).read_text()
    for key in re.findall(r"DJQUEUE\[\"([A-Z_]+)\"\]", text):
        assert key in conf.DEFAULTS, key


def test_the_api_tally_counts_its_table() -> None:
    section = _section("celery-migration.md", "The everyday API, item by item")
    rows = re.findall(r"^\| (\d+) \| .*? \| (same|different|missing) \| .*\|$", section, re.M)
    assert [int(number) for number, _ in rows] == list(range(1, 92))  # the 91 items
    counts = {status: sum(1 for _, s in rows if s == status) for status in ("same", "different")}
    missing = sum(1 for _, s in rows if s == "missing")
    assert (
        f"**Tally: {counts['same']} same, {counts['different']} different, {missing} missing.**"
        in section
    )
    # Every row that is not the same says why, and names its proof.
    for line in section.splitlines():
        if re.match(r"^\| \d+ \|", line):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            assert cells[-1].startswith("`tests/"), line
            for path in re.findall(r"`(tests/[\w/]+\.py)`", cells[-1]):
                assert (DOCS.parent / path).is_file(), path
            assert cells[2] == "same" or len(cells[3]) > 20, line


def test_the_app_module_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    [code] = _blocks("celery-migration.md", "The app module")
    namespace: dict[str, Any] = {"__name__": "docs_proj.celery"}
    exec(compile(code, "docs", "exec"), namespace)  # the page's own example
    namespace["debug_task"].apply()
    assert "Request: " in capsys.readouterr().out
    assert namespace["app"].main == "proj"
