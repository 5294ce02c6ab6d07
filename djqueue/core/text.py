"""Text from jobs made safe to keep and to show: storable by PostgreSQL, bounded in size,
and harmless on an operator's terminal.

A task's error message, traceback or name is data from the job, not from us: it may
hold a NUL byte or a lone surrogate (which PostgreSQL refuses to store), be megabytes
long, or carry terminal escape sequences. Replacements are visible (``\\x00``,
``\\udc80``), so that a reader sees that something was there.
"""

from __future__ import annotations

import re

# Code points PostgreSQL text cannot hold: NUL, and surrogates (a str holds them only
# unpaired; a valid pair is a single code point in Python).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# C0 and C1 control characters and DEL, except the line breaks and tab that a
# traceback needs when shown on several lines; and the invisible format characters
# that reorder or hide text (bidirectional overrides and isolates, zero-width ones),
# with which a name could pass for another.
_FORMAT = "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff{_FORMAT}]")
_CONTROL_ONE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_FORMAT}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def storable(text: str, limit: int | None = None) -> str:
    """``text`` with what PostgreSQL cannot store escaped, cut to ``limit`` characters.

    A cut keeps the start and the end (the end of a traceback says the most) and says
    how much was left out.
    """
    if _UNSTORABLE.search(text):
        text = _UNSTORABLE.sub(_escape, text)
    if limit is None or len(text) <= limit:
        return text
    marker = f"\n… [{len(text) - limit} characters left out] …\n"
    keep = max(0, limit - len(marker))
    head = keep // 4
    return text[:head] + marker + text[len(text) - (keep - head) :]


def shortened(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters from its start, saying so if cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def printable(text: str, one_line: bool = True) -> str:
    """``text`` with control characters escaped, for a terminal or a log line.

    Escape sequences in a task name or an error message could otherwise move the
    cursor, retitle the terminal or hide what follows. ``one_line`` escapes line breaks
    and tabs too.
    """
    pattern = _CONTROL_ONE_LINE if one_line else _CONTROL
    return pattern.sub(_escape, text) if pattern.search(text) else text
