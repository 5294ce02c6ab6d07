import datetime
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from djqueue.core import states
from djqueue.db import broker
from djqueue.db.models import Job, Queue
from tests.factories import JobFactory, StartedJobFactory
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("djqueue", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_status_shows_workers_and_queues() -> None:
    tasks.add.delay_many([(1, 1), (2, 2)])
    broker.register_worker("host.7", "host", 7, "threads", 4, ["default"])
    out, err = run("status")
    assert "Workers alive: 1" in out
    assert "host.7  pool=threads concurrency=4 queues=default" in out
    assert "default  waiting=2" in out
    assert err == ""


def test_status_flags_paused_and_limited_queues() -> None:
    tasks.add.apply_async((1, 1), queue="mail")
    tasks.add.apply_async((1, 1), queue="reports")
    tasks.add.delay(1, 1)
    broker.set_paused("mail", True)
    broker.set_queue_limits("reports", 2, (100, 60.0))
    lines = {line.split()[0]: line for line in run("status")[0].splitlines()[2:]}
    assert lines["mail"].endswith("running=0 paused")
    assert lines["reports"].endswith("running=0 limits=2 at once, 100/m")
    assert lines["default"].endswith("running=0")


def test_status_warns_when_jobs_wait_without_workers() -> None:
    tasks.add.delay(1, 1)
    out, err = run("status")
    assert "Workers alive: 0" in out
    assert "no worker is alive" in err


@pytest.mark.django_db(transaction=True)
def test_status_names_a_transaction_that_holds_back_vacuum(
    other_connection: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from djqueue.management.commands import djqueue as command

    # A report left open: its snapshot keeps vacuum from removing what died since.
    other_connection.execute("SET application_name = 'nightly-report'")
    other_connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    other_connection.execute("SELECT count(*) FROM djqueue_job")
    pid = other_connection.info.backend_pid
    _, err = run("status")
    assert "held back vacuum" not in err  # younger than HELD_SNAPSHOT_SECONDS
    monkeypatch.setattr(command, "HELD_SNAPSHOT_SECONDS", 0.0)
    _, err = run("status")
    assert f"(pid {pid}, application nightly-report, idle in transaction)" in err
    other_connection.rollback()
    _, err = run("status")
    assert "held back vacuum" not in err


def test_inspect_active_and_scheduled() -> None:
    running = StartedJobFactory(lease_expires_at=timezone.now() + datetime.timedelta(minutes=1))
    later = tasks.add.apply_async((1, 2), countdown=600, queue="later")
    active, _ = run("inspect", "active")
    header, line = active.splitlines()
    assert header.split() == ["ID", "TASK", "QUEUE", "WORKER", "RUNNING", "FOR"]
    assert line.split()[:4] == [str(running.id), running.task_name, "default", "gone-worker"]
    # Aligned: each column starts where its header does.
    assert line.index("gone-worker") == header.index("WORKER")
    scheduled, _ = run("inspect", "scheduled", "-Q", "later")
    assert str(later.id) in scheduled
    empty, _ = run("inspect", "scheduled", "-Q", "nothing-here")
    assert "No scheduled jobs." in empty


def test_inspect_reserved_lists_jobs_claimed_but_not_started() -> None:
    tasks.add.delay_many([(1, 1), (2, 2)])
    first, second = broker.claim(["default"], 2, "host.7", 30.0, limited=True)
    broker.mark_started("host.7", [(first.id, first.attempt, 0.0)])
    reserved, _ = run("inspect", "reserved")
    active, _ = run("inspect", "active")
    assert str(second.id) in reserved and "HELD BY" in reserved
    assert reserved.splitlines()[1].split()[-1] == "host.7"
    assert str(first.id) not in reserved
    assert str(first.id) in active and str(second.id) not in active
    status, _ = run("status")
    assert "reserved=1 running=1" in status


def test_inspect_stats() -> None:
    now = timezone.now()
    JobFactory(
        state=states.SUCCESS,
        started_at=now - datetime.timedelta(seconds=2),
        finished_at=now,
        eta=now - datetime.timedelta(seconds=3),
    )
    out, _ = run("inspect", "task-stats")
    assert "tests.testapp.tasks.add  finished=1 failed=0 (0%)" in out


@pytest.mark.django_db(transaction=True)  # the ping is a control row (see below)
def test_inspect_asks_the_workers_and_says_when_none_answered() -> None:
    out, err = run("inspect", "ping", "--timeout", "0.5")
    assert out == "" and "No live worker answered." in err
    revoked = tasks.add.delay(1, 2)
    revoked.revoke()
    out, _ = run("inspect", "revoked")
    assert str(revoked.id) in out


def test_revoke_by_id_says_what_happened() -> None:
    pending = tasks.add.delay(1, 2)
    done = JobFactory(state=states.SUCCESS, finished_at=timezone.now())
    out, _ = run("revoke", str(pending.id), str(done.id))
    assert f"{pending.id}: revoked" in out
    assert f"{done.id}: not revoked (it is SUCCESS)" in out
    assert Job.objects.get(pk=pending.id).state == states.REVOKED
    with pytest.raises(CommandError, match="is not a UUID"):
        run("revoke", "nope")


def test_revoke_terminate_with_a_signal_keeps_it_in_the_row() -> None:
    running = StartedJobFactory()
    out, _ = run("revoke", "--terminate", "--signal", "SIGTERM", str(running.id))
    assert f"{running.id}: asked to stop" in out
    assert Job.objects.get(pk=running.id).revoke_signal == 15
    with pytest.raises(CommandError, match="not a signal name"):
        run("revoke", "--terminate", "--signal", "SIGNOPE", str(running.id))


def test_prune(capsys: Any) -> None:
    JobFactory(state=states.SUCCESS, finished_at=timezone.now() - datetime.timedelta(days=3))
    out, _ = run("prune")
    assert "Pruned 1 finished job(s)" in out


TITLE = "\x1b]0;pwned\x07"  # sets the terminal's title
CLEAR = "\x1b[2J"  # clears the screen


def test_names_from_rows_reach_the_terminal_escaped() -> None:
    now = timezone.now()
    broker.register_worker(f"w{TITLE}", "host", 1, f"threads{CLEAR}", 1, [f"q{CLEAR}"])
    StartedJobFactory(
        task_name=f"t{TITLE}",
        queue=f"q{CLEAR}",
        worker=f"w{TITLE}",
        lease_expires_at=now + datetime.timedelta(minutes=1),
    )
    JobFactory(task_name=f"t{TITLE}", queue=f"q{CLEAR}", eta=now + datetime.timedelta(hours=1))
    JobFactory(
        task_name=f"t{TITLE}",
        state=states.FAILURE,
        started_at=now - datetime.timedelta(seconds=2),
        finished_at=now,
    )
    commands = [
        ["status"],
        ["inspect", "active"],
        ["inspect", "scheduled"],
        ["inspect", "task-stats"],
    ]
    shown = "".join(run(*command)[0] for command in commands)
    assert "\x1b" not in shown and "\x07" not in shown
    assert shown.count("t\\x1b]0;pwned\\x07") == 3  # active, scheduled, stats
    assert shown.count("w\\x1b]0;pwned\\x07") == 2  # status, active
    assert "q\\x1b[2J" in shown and "threads\\x1b[2J" in shown


def test_result_shows_state_times_and_the_value() -> None:
    sent = tasks.add.delay(2, 3)
    Job.objects.filter(pk=sent.id).update(
        state=states.SUCCESS,
        result=5,
        worker="w1.1.a",
        attempt=1,
        started_at=timezone.now() - datetime.timedelta(seconds=2),
        finished_at=timezone.now(),
    )
    out, _ = run("result", sent.id)
    lines = dict(line.split(None, 1) for line in out.splitlines())
    assert lines["id"] == sent.id and lines["task"] == tasks.add.name
    assert (lines["state"], lines["result"], lines["worker"]) == ("SUCCESS", "5", "w1.1.a")
    assert lines["args"] == "[2, 3]" and lines["attempts"] == "1 (retries 0)"
    assert lines["runtime"].endswith("s") and lines["finished"].startswith("20")
    with pytest.raises(CommandError, match="is not a UUID"):
        run("result", "nope")
    with pytest.raises(CommandError, match="no job"):
        run("result", "01a20b7e-d1ba-7000-a831-fba7ec660303")


def test_result_of_a_failure_shows_the_error_and_traceback_escaped() -> None:
    failed = JobFactory(
        state=states.FAILURE,
        error_type="ValueError",
        error_message=f"bad{TITLE}",
        traceback=f"Traceback (most recent call last):\n  line 1\nValueError: bad{CLEAR}\n",
        finished_at=timezone.now(),
    )
    out, _ = run("result", str(failed.id))
    assert "\x1b" not in out and "\x07" not in out
    assert "error     ValueError: bad\\x1b]0;pwned\\x07" in out
    assert "traceback:\n  Traceback (most recent call last):\n    line 1\n" in out


def test_call_sends_a_job_and_prints_its_id() -> None:
    out, _ = run("call", tasks.add.name, "[2, 3]", "--queue", "cli", "--countdown", "60")
    job = Job.objects.get(pk=out.strip())
    assert (job.args, job.kwargs, job.queue) == ([2, 3], {}, "cli")
    assert job.eta > timezone.now() + datetime.timedelta(seconds=50)
    out, _ = run("call", tasks.add.name, "--kwargs", '{"x": 1, "y": 2}', "--priority", "5")
    job = Job.objects.get(pk=out.strip())
    assert (job.kwargs, job.priority) == ({"x": 1, "y": 2}, 5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tests.testapp.tasks.ad", "[1, 2]"], "did you mean"),
        ([tasks.add.name, "[1, 2"], "ARGS is not JSON"),
        ([tasks.add.name, '{"x": 1}'], "ARGS must be an array in JSON"),
        ([tasks.add.name, "--kwargs", "[1]"], "--kwargs must be an object in JSON"),
        ([tasks.add.name, "[1, 2, 3]"], "cannot send tests.testapp.tasks.add"),
        ([tasks.add.name, "[1, 2]", "--eta", "tomorrow"], "is not an ISO time"),
        ([tasks.add.name, "[1, 2]", "--eta", "2030-01-01T09:00"], "has no time zone"),
        ([tasks.add.name, "[1, 2]", "--args", "[1, 2]"], "give the arguments once"),
    ],
)
def test_call_says_what_was_wrong(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("call", *args)
    assert not Job.objects.exists()


# Transactional: a control command is written on a connection of its own (committed at
# once), and must not outlive the test for the tests that count control rows.
@pytest.mark.django_db(transaction=True)
def test_control_checks_its_arguments_before_sending() -> None:
    with pytest.raises(CommandError, match="control rate_limit takes TASK RATE"):
        run("control", "rate_limit", tasks.add.name)
    with pytest.raises(CommandError, match="N must be a whole number"):
        run("control", "pool_grow", "two")
    with pytest.raises(CommandError, match="rate limits hold across all workers"):
        run("control", "rate_limit", tasks.add.name, "1/s", "-d", "w1")
    _, err = run("control", "shutdown", "-t", "0.5")
    assert "No live worker answered." in err


def test_queue_limit_shows_sets_and_clears_a_queues_limits() -> None:
    assert run("queue-limit", "mail") == ("mail: no limits\n", "")
    assert run("queue-limit", "mail", "--concurrency", "2")[0] == "mail: 2 at once\n"
    # An option not given keeps its limit.
    assert run("queue-limit", "mail", "--rate", "100/m")[0] == "mail: 2 at once, 100/m\n"
    row = Queue.objects.get(name="mail")
    assert (row.concurrency_limit, row.rate_limit, row.rate_period) == (2, 100, 60.0)
    assert run("queue-limit", "mail", "-c", "none")[0] == "mail: 100/m\n"
    assert run("queue-limit", "mail", "-r", "NONE")[0] == "mail: no limits\n"
    assert Queue.objects.get(name="mail").paused is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "0"], "--concurrency is a whole number of 1 or more"),
        (["-c", "two"], "--concurrency is a whole number of 1 or more"),
        (["-r", "100/d"], "--rate: rate_limit '100/d' has an unknown unit 'd'"),
        (["-r", "fast"], "--rate: rate_limit 'fast' is malformed"),
    ],
)
def test_queue_limit_refuses_what_is_not_a_limit(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("queue-limit", "mail", *args)
    assert not Queue.objects.filter(name="mail").exists()
