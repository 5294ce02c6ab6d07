"""What the djqueue admin pages share: read-only pages, state colours, log entries."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import LogEntry
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from djqueue.core import states
from djqueue.ops import admin_tables

STATE_COLOURS = {
    states.PENDING: "#79aec8",
    states.RECEIVED: "#b59b3a",
    states.STARTED: "#e0a800",
    states.RETRY: "#d98c00",
    states.SUCCESS: "#3a7d44",
    states.FAILURE: "#ba2121",
    states.REVOKED: "#777777",
    states.REJECTED: "#8a4f7d",
    states.IGNORED: "#999999",
}


class ReadOnlyAdmin(admin_tables.NeedsTables):
    """Shows rows; adding, editing and deleting are left to the broker."""

    # No full COUNT(*) on every page load: the job table can hold millions of rows.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def log_entries(request: HttpRequest, rows: QuerySet[Any], flag: int, message: str) -> None:
    """Admin log entries (one per row, in bulk) for an action ``request.user`` took."""
    user_id = request.user.pk
    assert user_id is not None  # admin actions run for logged-in staff only
    LogEntry.objects.log_actions(user_id, rows, flag, change_message=message)


def coloured(colour: str, text: str) -> SafeString:
    return format_html('<strong style="color: {}">{}</strong>', colour, text)
