"""What a search term of the job list matches (docs/monitoring.md#search).

Every part of a search is a condition an index serves, so that a search costs about the
same on ten million jobs as on a hundred; the parts are joined with OR:

- hex digits, dashes allowed (a job id, or its first characters): the ids that begin
  so, as a range of the primary key;
- a value: jobs with an argument equal to it, and ``name=value``: jobs with that keyword
  argument (or a key of an argument that is a dict), among the ARGUMENT_WINDOW newest
  jobs (a range of the primary key: ids are time-ordered). A number or
  ``true``/``false``/``null`` matches the JSON value and the same text as a string.
  No index holds the arguments: every job would write one on enqueue, claim and finish,
  which cost bulk enqueueing about a fifth of its rate (docs/monitoring.md#search);
- text of MIN_TEXT characters or more: jobs whose error (``"Type: message"``, its first
  SEARCHED_ERROR_CHARACTERS characters) contains it, any case, through the trigram
  index ``djqueue_job_error_search``;
- part of a registered task name: that task's jobs.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from typing import Any

from django.db.models import BooleanField, Func, Q, QuerySet, Value

from djqueue.core import registry
from djqueue.db.models import Job, jobs

# The alias of ``args || kwargs`` in a searched queryset.
CALL = "djqueue_call"
# Jobs whose arguments a search reads: the newest ones, as many as the job list's window.
ARGUMENT_WINDOW = 100_000

# Trigrams need three characters: a shorter pattern would read the whole index.
MIN_TEXT = 3
# A job id is 32 hex digits; a shorter run of them is the start of one.
ID_DIGITS = 32
_HEX = re.compile(r"[0-9a-f]+")
# name=value: a keyword argument (a Python identifier), then its value.
_KEYWORD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)


class _ILike(Func):
    """``text ILIKE pattern``: the operator a trigram index serves (Django's icontains
    compares UPPER() of the text, which the index does not hold)."""

    arg_joiner = " ILIKE "
    template = "%(expressions)s"
    output_field = BooleanField()


def filtered(queryset: QuerySet[Job], term: str) -> QuerySet[Job]:
    """The jobs of ``queryset`` that ``term`` finds (all of them for an empty term)."""
    term = term.strip()
    if not term:
        return queryset
    parts = [_id_prefix(term), _arguments(term, _newest(queryset)), _error(term), _task(term)]
    condition = Q()
    for part in parts:
        if part is not None:
            condition |= part
    return queryset.alias(**{CALL: jobs.call_values()}).filter(condition)


def _id_prefix(term: str) -> Q | None:
    """Ids beginning with ``term`` (hex digits; dashes are left out)."""
    digits = term.replace("-", "").lower()
    if not digits or len(digits) > ID_DIGITS or not _HEX.fullmatch(digits):
        return None
    if len(digits) == ID_DIGITS:
        return Q(pk=uuid.UUID(digits))
    low = uuid.UUID(digits.ljust(ID_DIGITS, "0"))
    high = uuid.UUID(digits.ljust(ID_DIGITS, "f"))
    return Q(pk__gte=low, pk__lte=high)


def _newest(queryset: QuerySet[Job]) -> Q:
    """The ARGUMENT_WINDOW newest jobs, as a range of ids (all jobs, when fewer)."""
    jobs = Job.objects.using(queryset.db).order_by("-pk").values_list("pk", flat=True)
    oldest = jobs[ARGUMENT_WINDOW - 1 : ARGUMENT_WINDOW].first()
    return Q() if oldest is None else Q(pk__gte=oldest)


def _arguments(term: str, newest: Q) -> Q:
    """Jobs among ``newest`` called with the value ``term``, or with the keyword
    argument it names."""
    keyword = _KEYWORD.fullmatch(term)
    if keyword:
        name, text = keyword.groups()
        wanted: list[object] = [[{name: value}] for value in _values(text.strip())]
    else:
        wanted = [[value] for value in _values(term)]
    condition = Q()
    for value in wanted:
        condition |= Q(**{f"{CALL}__contains": value})
    return newest & condition


def _values(text: str) -> list[Any]:
    """The JSON values ``text`` may stand for: itself as a string, and the number,
    boolean, null, quoted string, list or object it spells."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return [text]
    if isinstance(parsed, float) and not math.isfinite(parsed):
        return [text]  # NaN and Infinity are not JSON values a job can hold
    return [text] if parsed == text and isinstance(parsed, str) else [text, parsed]


def _error(term: str) -> Q | None:
    """Jobs whose error (type and message, as indexed) contains ``term``, any case."""
    if len(term) < MIN_TEXT:
        return None
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    # The partial index holds only jobs with an error message: the condition says so,
    # for the planner to use it.
    return ~Q(error_message="") & Q(_ILike(jobs.error_text(), Value(f"%{escaped}%")))


def _task(term: str) -> Q | None:
    """The jobs of the registered tasks whose names contain ``term``, any case."""
    names = [name for name in registry.names() if term.lower() in name.lower()]
    return Q(task_name__in=names) if names else None
