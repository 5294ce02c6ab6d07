"""The task API in real workers, in every pool: base-class hooks, Reject, Ignore,
throws, retry_kwargs, update_state and map/chunks."""

from __future__ import annotations

import importlib.util
import json

import pytest

import djqueue
from djqueue import exceptions, states
from tests.acceptance.conftest import Workers
from tests.testapp import tasks

POOLS = [
    "solo",
    "threads",
    "prefork",
    pytest.param(
        "gevent",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("gevent") is None, reason="gevent is not installed"
        ),
    ),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", POOLS)
def test_hooks_run_in_the_worker_with_celerys_arguments(workers: Workers, pool: str) -> None:
    worker = workers.start("-P", pool, "-c", "1")
    fine = tasks.hooked.delay("fine")
    failed = tasks.hooked.delay("fail")
    retried = tasks.hooked.delay("retry")

    assert fine.get(timeout=30) == "fine"
    with pytest.raises(KeyError):
        failed.get(timeout=30)
    assert retried.get(timeout=30) == "retry"

    worker.wait_for_log(f"hook after_return SUCCESS 'retry' {retried.id} None")
    log = worker.log()
    for line in (
        f"hook before_start {fine.id} ['fine'] {{}}",
        f"hook on_success fine {fine.id} ['fine'] {{}}",
        f"hook after_return SUCCESS 'fine' {fine.id} None",
        f"hook on_failure KeyError('boom') {failed.id} ['fail'] True",
        f"hook after_return FAILURE KeyError('boom') {failed.id} None",
        f"hook on_retry ConnectionError('again') {retried.id} ['retry'] Retry",
    ):
        assert line in log


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", POOLS)
def test_reject_ignore_and_throws_in_the_worker(workers: Workers, pool: str) -> None:
    worker = workers.start("-P", pool, "-c", "2")
    rejected = tasks.reject.delay("no thanks")
    requeued = tasks.reject.delay("not now", requeue=True)
    ignored = tasks.ignore.delay(state="SKIPPED")
    expected = tasks.expected_failure.delay("known")

    with pytest.raises(exceptions.Reject, match="no thanks"):
        rejected.get(timeout=30)
    with pytest.raises(exceptions.Reject, match="not now"):
        requeued.get(timeout=30)
    assert requeued.job.attempt == 3  # max_retries=2: three runs, then rejected
    assert ignored.get(timeout=30) is None
    assert (ignored.state, ignored.info) == ("SKIPPED", {"why": "ignored on purpose"})
    with pytest.raises(KeyError):
        expected.get(timeout=30)
    assert expected.state == states.FAILURE

    worker.wait_for_log(f"Task tests.testapp.tasks.expected_failure[{expected.id}] raised expected")
    log = worker.log()
    assert f"Task tests.testapp.tasks.ignore[{ignored.id}] ignored" in log
    assert f"Task tests.testapp.tasks.reject[{rejected.id}] rejected: no thanks" in log
    expected_line = next(line for line in log.splitlines() if str(expected.id) in line)
    assert "Traceback" not in log.split(expected_line, 1)[1].split("\n", 2)[1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", POOLS)
def test_retry_kwargs_base_options_and_map_in_the_worker(workers: Workers, pool: str) -> None:
    workers.start("-P", pool, "-c", "2")
    autoretried = tasks.autoretry_twice.delay()
    patient = tasks.patient.delay()
    chunked = tasks.add.chunks([(i, 1) for i in range(5)], 2).apply_async()
    mapped = tasks.show.map(["a"]).delay()

    assert autoretried.get(timeout=30) == 2
    assert patient.get(timeout=30) == 4
    assert chunked.get(timeout=30) == [[1, 2], [3, 4], [5]]
    assert mapped.get(timeout=30) == ["result: a"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", POOLS)
def test_request_and_per_call_options_in_every_pool(workers: Workers, pool: str) -> None:
    worker = workers.start("-P", pool, "-c", "2")
    seen = tasks.describe_request.apply_async(
        headers={"tenant": "acme"}, shadow="acme report", routing_key="reports"
    ).get(timeout=30)
    assert (seen["tenant"], seen["delivery_info"]["routing_key"]) == ("acme", "reports")
    assert seen["root_id"] == seen["id"] and seen["hostname"].startswith(worker.name_prefix)
    # The ids are strings in every pool: JSON takes them as they are.
    assert json.loads(seen["ids_as_json"]) == [seen["id"], seen["id"], None, None]
    parent = tasks.send_child.delay()
    child = djqueue.AsyncResult(parent.get(timeout=30))
    member = djqueue.group(tasks.describe_request.si()).apply_async()
    sent, in_group = child.get(timeout=30), member.get(timeout=30)[0]
    assert json.loads(sent["ids_as_json"]) == [child.id, parent.id, parent.id, None]
    assert json.loads(in_group["ids_as_json"])[3] == member.id
    worker.wait_for_log(f"Task acme report[{seen['id']}] succeeded")

    # A greenlet is stopped where it waits; a thread where it runs Python code.
    long_running = tasks.sleep if pool == "gevent" else tasks.spin
    stopped = long_running.apply_async((30,), time_limit=1)
    with pytest.raises(exceptions.TimeLimitExceeded):
        stopped.get(timeout=30)
