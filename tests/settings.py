"""Settings for djqueue's own test suite (real PostgreSQL on 127.0.0.1)."""

from __future__ import annotations

import json
import os

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "djqueue",
    "tests.testapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        # Worker subprocesses of the acceptance tests are pointed at the test database.
        "NAME": os.environ.get("DJQUEUE_TEST_DB_NAME", "djqueue"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        # Separate names let several checkouts run the suite at once on one server.
        "TEST": {"NAME": os.environ.get("DJQUEUE_TEST_DATABASE", "test_djqueue")},
    }
}
# Processes started on a primary and its standby (tests/chaos/test_failover.py): HOST and
# PORT list both servers, and libpq keeps the one that accepts writes.
if os.environ.get("DJQUEUE_TEST_TARGET_SESSION_ATTRS"):
    DATABASES["default"]["OPTIONS"] = {
        "target_session_attrs": os.environ["DJQUEUE_TEST_TARGET_SESSION_ATTRS"]
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The browser tests' live server serves the admin's styles.
STATIC_URL = "/static/"

DJQUEUE = {
    "LEASE_SECONDS": float(os.environ.get("DJQUEUE_LEASE_SECONDS", "30")),
    "HEARTBEAT_SECONDS": float(os.environ.get("DJQUEUE_HEARTBEAT_SECONDS", "5")),
    "SHUTDOWN_GRACE_SECONDS": float(os.environ.get("DJQUEUE_GRACE_SECONDS", "30")),
    "POLL_INTERVAL_SECONDS": float(os.environ.get("DJQUEUE_POLL_SECONDS", "1")),
    "SERIES_ROLLUP_SECONDS": float(os.environ.get("DJQUEUE_SERIES_ROLLUP_SECONDS", "30")),
    # Processes started behind a pooler (tests/acceptance/test_pgbouncer.py).
    "LISTEN_DSN": os.environ.get("DJQUEUE_LISTEN_DSN") or None,
}
# Read-only monitoring on a standby (tests/chaos/test_failover.py): the same servers,
# as docs/deployment.md sets it up, a standby preferred.
if os.environ.get("DJQUEUE_TEST_MONITORING_SESSION_ATTRS"):
    DATABASES["monitoring"] = {
        **DATABASES["default"],
        "OPTIONS": {"target_session_attrs": os.environ["DJQUEUE_TEST_MONITORING_SESSION_ATTRS"]},
    }
    DJQUEUE["MONITORING_DATABASE"] = "monitoring"
# The guards against dead links (djqueue.db.sessions), shortened for processes on the
# worker hosts of tests/hosts, whose links are cut, and for a host that never answers
# (tests/acceptance/test_outage.py).
for _guard in (
    "TCP_KEEPALIVE_IDLE_SECONDS",
    "TCP_KEEPALIVE_INTERVAL_SECONDS",
    "TCP_KEEPALIVE_COUNT",
    "TCP_USER_TIMEOUT_SECONDS",
    "CONNECT_TIMEOUT_SECONDS",
):
    if f"DJQUEUE_{_guard}" in os.environ:
        DJQUEUE[_guard] = float(os.environ[f"DJQUEUE_{_guard}"])
# 0: every worker claims on every notification, for tests of what several workers share
# (tests/acceptance/test_limits.py), whom the herd's stagger would leave to one of them.
if "DJQUEUE_WAKE_STAGGER_MS" in os.environ:
    DJQUEUE["WAKE_STAGGER_MS"] = float(os.environ["DJQUEUE_WAKE_STAGGER_MS"])
# "none" behind a pooler without LISTEN_DSN (tests/acceptance/test_pgbouncer.py).
if "DJQUEUE_STATEMENT_TIMEOUT_SECONDS" in os.environ:
    _timeout = os.environ["DJQUEUE_STATEMENT_TIMEOUT_SECONDS"]
    DJQUEUE["STATEMENT_TIMEOUT_SECONDS"] = None if _timeout == "none" else float(_timeout)
# A BEAT_SCHEDULE for runbeat processes of a test, as JSON (schedules in seconds).
if os.environ.get("DJQUEUE_TEST_BEAT_SCHEDULE"):
    DJQUEUE["BEAT_SCHEDULE"] = json.loads(os.environ["DJQUEUE_TEST_BEAT_SCHEDULE"])
if "DJQUEUE_PREPARED_STATEMENTS" in os.environ:
    DJQUEUE["PREPARED_STATEMENTS"] = {"true": True, "false": False}.get(
        os.environ["DJQUEUE_PREPARED_STATEMENTS"], os.environ["DJQUEUE_PREPARED_STATEMENTS"]
    )

# Django 6's Tasks framework, backed by djqueue (ignored by Django 5.2).
TASKS = {
    "default": {
        "BACKEND": "djqueue.backends.DjqueueBackend",
        "QUEUES": ["default", "django"],
    }
}
