"""A module of an installed app other than ``tasks.py``, with a task of Django's own
framework: a worker that never imported it finds it by its module path."""

from __future__ import annotations

from django.tasks import task


@task()
def send_welcome(address: str) -> str:
    return f"welcome sent to {address}"
