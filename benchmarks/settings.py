"""Django settings for the benchmarks: djqueue alone, on its own database."""

from __future__ import annotations

import os

SECRET_KEY = "benchmarks-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["djqueue", "benchmarks.benchapp"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("DJQUEUE_BENCH_DB", "djqueue_bench"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        # Workers keep their connection for their whole life, as in production.
        "CONN_MAX_AGE": None,
        # DJQUEUE_BENCH_PREPARE=1: server-side binding with prepared statements, to
        # measure what planning each statement anew costs (Django's default: neither).
        "OPTIONS": (
            {"server_side_binding": True, "prepare_threshold": 2}
            if os.environ.get("DJQUEUE_BENCH_PREPARE") == "1"
            else {}
        ),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Defaults everywhere else: the figures are those a user gets out of the box.
DJQUEUE: dict[str, object] = {}
# pooler.py: the database through PgBouncer, LISTEN straight to the server.
if os.environ.get("DJQUEUE_BENCH_LISTEN_DSN"):
    DJQUEUE["LISTEN_DSN"] = os.environ["DJQUEUE_BENCH_LISTEN_DSN"]
# series_cost.py: how often workers roll up the console's time series (default 30 s;
# "off": never).
_ROLLUP = os.environ.get("DJQUEUE_BENCH_ROLLUP_SECONDS")
if _ROLLUP:
    DJQUEUE["SERIES_ROLLUP_SECONDS"] = None if _ROLLUP == "off" else float(_ROLLUP)
# herd.py: how often idle workers poll, and their stagger (defaults when unset).
for _name, _env in (
    ("POLL_INTERVAL_SECONDS", "DJQUEUE_BENCH_POLL_SECONDS"),
    ("WAKE_STAGGER_MS", "DJQUEUE_BENCH_WAKE_STAGGER_MS"),
):
    if os.environ.get(_env):
        DJQUEUE[_name] = float(os.environ[_env])
