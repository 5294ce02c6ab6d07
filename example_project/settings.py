"""Settings of the example project, read from the environment (see README.md).

Every value has a default that works on a developer machine with a local PostgreSQL
server that trusts the ``postgres`` user; override with environment variables.
"""

from __future__ import annotations

from pathlib import Path

import environ

from djqueue.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env(
    DEBUG=(bool, True),
    ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1", "[::1]"]),
)

# An insecure key for local use only; set SECRET_KEY in any real deployment.
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-djqueue-example-only")
DEBUG = env("DEBUG")
ALLOWED_HOSTS = env("ALLOWED_HOSTS")

DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/djqueue_example"
    ),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "djqueue",
    "example_project.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"

# Emails are printed by whichever process sends them: the worker, for task emails.
# This is Django's console backend with one lock shared by the worker's threads.
EMAIL_BACKEND = "example_project.shop.mail.ConsoleEmailBackend"
DEFAULT_FROM_EMAIL = "shop@example.com"

DJQUEUE = {
    "DEFAULT_QUEUE": "default",
    # Short, so that stopping the demo's worker never hangs on a slow task.
    "SHUTDOWN_GRACE_SECONDS": 10.0,
    # Keep finished jobs for a week, so that results can be browsed in the admin.
    "RESULT_RETENTION_SECONDS": 7 * 86400.0,
    # Periodic tasks, sent by `python manage.py runbeat` (rundemo starts one). They show
    # up, and can be edited, under "Periodic tasks" in the admin.
    "BEAT_SCHEDULE": {
        "sales-report": {
            "task": "example_project.shop.tasks.build_sales_report",
            "schedule": 10,  # seconds
            "description": "A fresh sales report every ten seconds, for the demo.",
        },
        "morning-sales-report": {
            "task": "example_project.shop.tasks.build_sales_report",
            "schedule": crontab(minute=0, hour=8, timezone="Europe/Paris"),
            "description": "The report the shop owner reads with breakfast.",
        },
    },
}
