"""Text from jobs made storable by PostgreSQL and safe on a terminal."""

from __future__ import annotations

from djqueue.core import text


def test_nul_and_lone_surrogates_are_escaped_visibly() -> None:
    assert text.storable("a\x00b\udc80c") == "a\\x00b\\udc80c"


def test_storable_text_is_unchanged() -> None:
    sample = "plain, accents é, emoji 😀\nand lines"
    assert text.storable(sample) is sample


def test_long_text_keeps_start_and_end_and_says_what_was_cut() -> None:
    long = "START" + "x" * 10_000 + "END"
    cut = text.storable(long, 1000)
    assert len(cut) == 1000
    assert cut.startswith("START") and cut.endswith("END")
    assert "characters left out" in cut


def test_printable_escapes_terminal_control_sequences() -> None:
    assert text.printable("red\x1b[31m\x07") == "red\\x1b[31m\\x07"
    assert text.printable("two\nlines") == "two\\x0alines"
    assert text.printable("two\nlines\ttab", one_line=False) == "two\nlines\ttab"
    assert text.printable("c1 \x9b csi") == "c1 \\x9b csi"
    # Invisible characters that reorder or hide text are shown too.
    assert text.printable("evil\u202etxt.exe") == "evil\\u202etxt.exe"
    assert text.printable("zero\u200bwidth") == "zero\\u200bwidth"


def test_shortened_says_how_much_is_hidden() -> None:
    assert text.shortened("abcdef", 3) == "abc… [3 more characters]"
    assert text.shortened("abc", 3) == "abc"
