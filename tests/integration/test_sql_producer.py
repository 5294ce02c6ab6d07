"""Who may enqueue from SQL: members of djqueue_producer, through djqueue_enqueue() only.

Roles belong to the whole PostgreSQL cluster, so each test makes its own, with a name
no other run uses, and drops it when it ends.
"""

from __future__ import annotations

import importlib
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from psycopg import errors

import djqueue
from djqueue.core import states
from djqueue.db.models import Job
from djqueue.integrations import testing

hardening = importlib.import_module("djqueue.migrations.0010_sql_enqueue_hardening")

PRODUCER = "djqueue_producer"
ENQUEUE = "SELECT djqueue_enqueue('tests.testapp.tasks.add', '[20, 22]')"

Login = Callable[..., psycopg.Connection[Any]]


def admin_sql(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql)


@pytest.fixture
def login(transactional_db: None) -> Iterator[Login]:
    """Makes login roles (``login(member_of=PRODUCER)``) and connects as them."""
    made: list[tuple[str, psycopg.Connection[Any]]] = []

    def make(member_of: str | None = None, options: str = "") -> psycopg.Connection[Any]:
        name = f"djqueue_test_{secrets.token_hex(6)}"
        membership = f"IN ROLE {member_of}" if member_of else ""
        admin_sql(f"CREATE ROLE {name} LOGIN {options} {membership}")
        settings = connection.settings_dict
        conn = psycopg.connect(
            host=settings["HOST"],
            port=settings["PORT"],
            dbname=settings["NAME"],
            user=name,
            autocommit=True,
        )
        made.append((name, conn))
        return conn

    yield make
    for name, conn in made:
        conn.close()
        # DROP OWNED also takes away what was granted to the role in this database.
        admin_sql(f"DROP OWNED BY {name}")
        admin_sql(f"DROP ROLE {name}")


def test_the_producer_role_exists_and_cannot_log_in(transactional_db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [PRODUCER])
        assert cursor.fetchall() == [(False,)]


def test_a_member_of_the_producer_role_enqueues_a_job_that_runs(login: Login) -> None:
    producer = login(member_of=PRODUCER)
    row = producer.execute(ENQUEUE).fetchone()
    assert row is not None
    testing.run_pending()
    assert djqueue.AsyncResult(str(row[0])).get() == 42


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM djqueue_job",
        "SELECT id FROM djqueue_job WHERE false",
        "INSERT INTO djqueue_job (id, task_name) VALUES (gen_random_uuid(), 'x')",
        "UPDATE djqueue_job SET state = 'SUCCESS'",
        "DELETE FROM djqueue_job",
        "TRUNCATE djqueue_job",
    ],
)
def test_a_producer_has_no_rights_on_the_job_table(login: Login, statement: str) -> None:
    producer = login(member_of=PRODUCER)
    producer.execute(ENQUEUE)
    with pytest.raises(errors.InsufficientPrivilege):
        producer.execute(statement)
    assert Job.objects.get().state == states.PENDING


@pytest.mark.parametrize(
    "call",
    [
        "djqueue_enqueue('tests.testapp.tasks.add', '[1, 1]', state => 'SUCCESS')",
        "djqueue_enqueue('tests.testapp.tasks.add', '[1, 1]', attempt => 5)",
        "djqueue_enqueue('tests.testapp.tasks.add', '[1, 1]', '{}', 'default', 0, NULL, 4, "
        "'SUCCESS')",
    ],
)
def test_a_producer_cannot_set_what_the_function_does_not_take(login: Login, call: str) -> None:
    producer = login(member_of=PRODUCER)
    with pytest.raises(errors.UndefinedFunction):
        producer.execute(f"SELECT {call}")
    assert not Job.objects.exists()


def test_a_job_from_a_producer_starts_as_any_new_job(login: Login) -> None:
    producer = login(member_of=PRODUCER)
    producer.execute(
        "SELECT djqueue_enqueue('tests.testapp.tasks.add', '[1, 1]', '{}', 'mail', 100, "
        "now() - interval '1 day', 1)"
    )
    job = Job.objects.get()
    assert (job.state, job.attempt, job.retries, job.worker) == (states.PENDING, 0, 0, "")
    assert (job.result, job.error_type, job.error_message, job.traceback) == (None, "", "", "")
    assert (job.started_at, job.finished_at, job.lease_expires_at) == (None, None, None)
    assert (job.workflow, job.history, job.unique_key, job.gated) == (None, None, None, False)
    assert job.enqueued_at > job.eta  # an eta in the past is allowed; the enqueue time is now


def test_a_producer_cannot_redirect_the_insert_to_its_own_table(login: Login) -> None:
    producer = login(member_of=PRODUCER)
    producer.execute("CREATE TEMPORARY TABLE djqueue_job (LIKE pg_catalog.pg_class)")
    producer.execute("SET search_path = pg_temp, public")
    producer.execute(ENQUEUE)
    assert Job.objects.count() == 1


def test_a_producer_cannot_change_the_size_cap(login: Login) -> None:
    producer = login(member_of=PRODUCER)
    with pytest.raises(errors.InsufficientPrivilege):
        producer.execute(
            "CREATE OR REPLACE FUNCTION djqueue_max_payload_bytes() RETURNS bigint "
            "LANGUAGE sql AS 'SELECT 1000000000::bigint'"
        )


def test_a_role_outside_the_producer_role_cannot_enqueue(login: Login) -> None:
    outsider = login()
    with pytest.raises(errors.InsufficientPrivilege, match="function djqueue_enqueue"):
        outsider.execute(ENQUEUE)
    assert not Job.objects.exists()


def test_without_the_right_to_create_roles_the_migration_skips_the_role(login: Login) -> None:
    # The migration's role step, for a role of this test's own: a cluster-wide role
    # that other databases use cannot be dropped to watch it being made.
    role = f"djqueue_test_{secrets.token_hex(6)}"
    step = hardening.GRANT_PRODUCER.replace(PRODUCER, role)
    notices: list[str] = []
    migrator = login()  # no CREATEROLE
    migrator.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
    migrator.execute(step)
    assert notices == [
        f"djqueue: the role {role} was not created (this user may not create roles); "
        'see "Who may enqueue" in djqueue\'s docs/sql.md'
    ]
    admin_sql(step)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT has_function_privilege(%s, %s, 'EXECUTE')", [role, hardening.SIGNATURE]
            )
            assert cursor.fetchone() == (True,)
    finally:
        admin_sql(f"DROP OWNED BY {role}")
        admin_sql(f"DROP ROLE {role}")


def test_migrating_back_restores_the_earlier_function_and_forward_again(
    transactional_db: None,
) -> None:
    def granted() -> set[str]:
        """Who the function's own privileges name (besides its owner)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COALESCE(r.rolname, 'PUBLIC') FROM pg_proc p "
                "CROSS JOIN aclexplode(p.proacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee "
                "WHERE p.oid = %s::regprocedure AND a.grantee <> p.proowner",
                [hardening.SIGNATURE],
            )
            return {name for (name,) in cursor.fetchall()}

    try:
        call_command("migrate", "djqueue", "0009", verbosity=0)
        assert granted() == {"PUBLIC"}
    finally:
        call_command("migrate", "djqueue", verbosity=0)
    assert granted() == {PRODUCER}
