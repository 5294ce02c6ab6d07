"""A job's stored values as the admin shows them: JSON cut to a page's size, and
what could not be decoded shown as stored, under a note."""

from __future__ import annotations

import json
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString

from djqueue.core import codec, text

# Characters of one value (args, kwargs, result, error message, traceback) shown on a
# page: a row may hold megabytes, and a page should not.
SHOWN_CHARACTERS = 10_000
# An attempt's error in the attempts table, and a progress message on the list.
SHOWN_IN_A_CELL = 1_000
UNDECODED_NOTE = (
    "Part of this could not be decoded (a malformed tagged value, or JSON nested too "
    "deeply): it is shown as stored."
)


def pretty(value: object) -> SafeString:
    """``value`` as JSON, cut to SHOWN_CHARACTERS; when part of it could not be decoded,
    all of it as stored, under a note."""
    try:
        undecoded = codec.has_undecoded(value)
        shown = _json(value, as_stored=undecoded)
    except RecursionError:  # decoded, but nested deeper than Python can walk here
        return format_html('<p class="errornote">{}</p>', "Nested too deeply to be shown here.")
    pre = format_html("<pre>{}</pre>", text.shortened(shown, SHOWN_CHARACTERS))
    if not undecoded:
        return pre
    return format_html('<p class="errornote">{}</p>{}', UNDECODED_NOTE, pre)


def _json(value: object, as_stored: bool) -> str:
    """Indented JSON of ``value``; one line when it will be cut anyway (indenting is
    slow). ``as_stored`` writes decoded dates, decimals and UUIDs in their tagged form."""
    if isinstance(value, codec.Undecodable):
        return str(value)
    options: dict[str, Any] = {"ensure_ascii": False, "sort_keys": True}
    if as_stored:
        options["cls"] = codec.Encoder
    else:
        options["default"] = str
    compact = json.dumps(value, **options)
    return compact if len(compact) > SHOWN_CHARACTERS else json.dumps(value, indent=2, **options)


def attempt_error(error_type: str | None, message: str | None) -> str:
    """An attempt's error for the attempts table, cut to SHOWN_IN_A_CELL."""
    return text.shortened(" ".join(filter(None, [error_type, message])), SHOWN_IN_A_CELL)
