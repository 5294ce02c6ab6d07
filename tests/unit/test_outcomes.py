"""What a job ends with is always storable: errors and tracebacks are made so, a result
that is not fails its job with a reason (no database needed)."""

from __future__ import annotations

import dataclasses
import datetime
import json
import uuid
from typing import Any

import pytest

import djqueue
from djqueue.core import executor
from djqueue.core.records import ClaimedJob, Outcome


def _run(task: Any, *args: Any) -> Outcome:
    job = ClaimedJob(
        uuid.uuid4(), task.name, json.dumps(list(args)), "{}", 1, 0, "default", 0, None, False
    )
    return executor.execute(job)


@djqueue.task(name="tests.unit.outcomes.raise_text")
def raise_text(message: str) -> None:
    raise ValueError(message)


@pytest.mark.parametrize(
    ("message", "stored"),
    [("a\x00b", "a\\x00b"), ("a\udc80b", "a\\udc80b"), ("fine é 😀", "fine é 😀")],
)
def test_error_messages_and_tracebacks_are_made_storable(message: str, stored: str) -> None:
    outcome = _run(raise_text, message)
    assert outcome.state == "FAILURE"
    assert outcome.error_message == stored
    assert stored in outcome.traceback
    for text in (outcome.error_message, outcome.traceback, outcome.error_type):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogate left: this would raise


@djqueue.task(name="tests.unit.outcomes.return_text")
def return_text(kind: str) -> Any:
    return {"nul": "a\x00b", "surrogate": ["a\udc80b"]}[kind]


@pytest.mark.parametrize(("kind", "said"), [("nul", "NUL"), ("surrogate", "lone surrogate")])
def test_a_result_that_cannot_be_stored_fails_its_job_saying_why(kind: str, said: str) -> None:
    outcome = _run(return_text, kind)
    assert (outcome.state, outcome.error_type) == ("FAILURE", "TypeError")
    assert outcome.error_message.startswith("the task returned a value JSON cannot carry")
    assert said in outcome.error_message
    assert outcome.result is None


def test_huge_messages_and_tracebacks_are_capped(settings: Any) -> None:
    settings.DJQUEUE = {"MAX_ERROR_CHARS": 1000, "MAX_TRACEBACK_CHARS": 2000}
    outcome = _run(raise_text, "x" * 50_000 + "END")
    assert len(outcome.error_message) == 1000
    assert outcome.error_message.endswith("END")
    assert "characters left out" in outcome.error_message
    assert len(outcome.traceback) == 2000
    assert outcome.traceback.startswith("Traceback")


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


@djqueue.task(name="tests.unit.outcomes.raise_unprintable")
def raise_unprintable() -> None:
    raise Unprintable()


def test_an_error_whose_message_cannot_be_read_still_ends_the_job() -> None:
    outcome = _run(raise_unprintable)
    assert outcome.state == "FAILURE"
    assert outcome.error_type.endswith("Unprintable")
    assert "could not be read" in outcome.error_message


@djqueue.task(name="tests.unit.outcomes.raise_long_name")
def raise_long_name() -> None:
    raise type("E" * 400, (Exception,), {})("long")


def test_an_error_type_longer_than_its_column_is_cut() -> None:
    outcome = _run(raise_long_name)
    assert outcome.state == "FAILURE"
    assert len(outcome.error_type) <= 255


def test_a_timed_outcome_keeps_every_other_field() -> None:
    # Outcome.timed copies the fields one by one: a field added later must be copied too.
    every = {
        "job_id": uuid.uuid4(),
        "attempt": 3,
        "task_name": "t",
        "state": "RETRY",
        "result": "1",
        "error_type": "E",
        "error_message": "m",
        "traceback": "tb",
        "retry_in": 2.5,
        "retry_at": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        "runtime": 0.0,
        "worker": "w",
        "killed": "k",
        "exception": ValueError("x"),
    }
    assert set(every) == {field.name for field in dataclasses.fields(Outcome)}
    outcome = Outcome(**every)  # type: ignore[arg-type]
    timed = outcome.timed(1.5)
    assert timed.runtime == 1.5
    for name, value in every.items():
        if name != "runtime":
            assert getattr(timed, name) is value, name


def test_requests_of_plain_jobs_do_not_share_their_headers() -> None:
    seen = []

    @djqueue.task(name="tests.unit.outcomes.change_headers", bind=True)
    def change_headers(self: Any) -> None:
        seen.append(dict(self.request.headers))
        self.request.headers["added"] = True

    _run(change_headers)
    _run(change_headers)
    assert seen == [{}, {}]
