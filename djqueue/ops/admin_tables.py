"""Admin pages on a database without djqueue's tables: one page that says to migrate.

Without it, the first page an operator opens after forgetting ``migrate`` is a
``ProgrammingError`` from deep inside the admin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse

from djqueue.db import schema

# Service Unavailable: the pages work again once the migrations are applied.
STATUS = 503


class NeedsTables(admin.ModelAdmin):  # type: ignore[type-arg]
    """A ModelAdmin whose pages say "run migrate" when djqueue's tables are missing."""

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return self.needing_tables(request, super().changelist_view, request, extra_context)

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.needing_tables(request, super().changeform_view, request, *args, **kwargs)

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.needing_tables(request, super().delete_view, request, *args, **kwargs)

    def history_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.needing_tables(request, super().history_view, request, *args, **kwargs)

    def needing_tables(
        self, request: HttpRequest, view: Callable[..., HttpResponse], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """Run ``view``, rendering its page here: the page's own queries run while it
        renders, and a missing table must be caught there too."""
        try:
            response = view(*args, **kwargs)
            if isinstance(response, TemplateResponse):
                response.render()
        except DatabaseError as exc:
            missing = schema.translate(exc)
            if missing is None:
                raise
            schema.roll_back_after_error()
            return self._missing(request, str(missing))
        return response

    def needing_tables_json(
        self, view: Callable[..., HttpResponse], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """Run ``view``, a view answering JSON: when the tables are missing, the answer
        is JSON too (``{"error": ...}``), which the page's script can show."""
        try:
            return view(*args, **kwargs)
        except DatabaseError as exc:
            missing = schema.translate(exc)
            if missing is None:
                raise
            schema.roll_back_after_error()
            return JsonResponse({"error": str(missing)}, status=STATUS)

    def _missing(self, request: HttpRequest, message: str) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "djqueue's tables are missing",
            "opts": self.model._meta,
            "message": message,
        }
        return TemplateResponse(
            request, "djqueue/admin/tables_missing.html", context, status=STATUS
        )
