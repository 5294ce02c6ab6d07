"""``manage.py djqueue import-beat``: a Celery project's schedule into djqueue's periodic
tasks, from the ``django_celery_beat`` tables and from ``CELERY_BEAT_SCHEDULE``."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from djqueue.beat import beat_schedule, celery_beat
from djqueue.core import conf


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "import-beat",
        help="import a django_celery_beat schedule and CELERY_BEAT_SCHEDULE (idempotent)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="report what would be imported; change nothing"
    )


def run(out: Any, dry_run: bool = False) -> None:
    """Import, report each periodic task's fate to ``out``; roll back when ``dry_run``."""
    with transaction.atomic(using=conf.database()):
        tables = celery_beat.import_tables()
        settings = beat_schedule.sync() if conf.get("BEAT_SCHEDULE") else None
        if dry_run:
            transaction.set_rollback(True, using=conf.database())
    prefix = "Would import" if dry_run else "Imported"
    if not tables.found:
        out.write("No django_celery_beat tables in the database.")
    else:
        _write_tables(out, tables, prefix)
    if settings is None:
        out.write("BEAT_SCHEDULE / CELERY_BEAT_SCHEDULE: no entries.")
    else:
        _write_settings(out, settings, prefix)
    if dry_run:
        out.write("Dry run: nothing was changed.")


def _write_tables(out: Any, report: celery_beat.Report, prefix: str) -> None:
    out.write(
        f"django_celery_beat: {len(report.created)} new, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged, {len(report.skipped)} not imported."
    )
    for label, names in (("new", report.created), ("updated", report.updated)):
        for name in names:
            out.write(f"  {prefix} {name!r} ({label})")
            for note in report.notes.get(name, []):
                out.write(f"    note: {note}")
    for name in report.unchanged:
        out.write(f"  {name!r}: already imported, unchanged")
    for name, reason in report.skipped.items():
        out.write(f"  Not imported {name!r}: {reason}")


def _write_settings(out: Any, report: beat_schedule.SyncReport, prefix: str) -> None:
    out.write(
        f"BEAT_SCHEDULE: {len(report.created)} new, {len(report.updated)} updated, "
        f"{len(report.errors)} not imported."
    )
    for name in report.created:
        out.write(f"  {prefix} {name!r} (new)")
    for name in report.updated:
        out.write(f"  {prefix} {name!r} (updated)")
    for name, error in report.errors.items():
        out.write(f"  Not imported {name!r}: {error}")
