"""Stored tracebacks parsed for the job page: the user's frames, library frames folded."""

from __future__ import annotations

import json
import traceback

from djqueue.ops import tracebacks


def _raise_through_the_library() -> str:
    def build_report(payload: str) -> object:
        return json.loads(payload)  # the standard library raises

    try:
        build_report("{not json")
    except ValueError:
        return traceback.format_exc()
    raise AssertionError("no error")


def test_user_frames_and_library_frames_of_a_real_traceback() -> None:
    parsed = tracebacks.parse(_raise_through_the_library())
    functions = [frame.function for frame in parsed.user_frames]
    assert functions == ["_raise_through_the_library", "build_report"]
    assert parsed.library_frames >= 2  # json/__init__.py, json/decoder.py
    assert parsed.exception.startswith("json.decoder.JSONDecodeError: Expecting property name")
    kinds = [block.kind for block in parsed.blocks]
    assert kinds[0] == "text"  # "Traceback (most recent call last):"
    assert kinds[1:3] == ["user", "user"]
    assert kinds[3] == "library"  # one folded run
    assert parsed.blocks[3].frames == parsed.library_frames
    assert kinds[-1] == "text"


def test_library_files() -> None:
    assert tracebacks.is_library("/usr/lib/python3.11/json/decoder.py")
    assert tracebacks.is_library("/srv/venv/lib/python3.12/site-packages/requests/api.py")
    assert tracebacks.is_library("/usr/lib/python3/dist-packages/yaml/__init__.py")
    assert tracebacks.is_library("<frozen importlib._bootstrap>")
    assert tracebacks.is_library(tracebacks.__file__)  # djqueue itself
    assert not tracebacks.is_library("/srv/shop/tasks.py")
    assert not tracebacks.is_library(__file__)


def test_chained_exceptions_keep_every_part_in_order() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/srv/shop/tasks.py", line 3, in fetch\n'
        "    return client.get(url)\n"
        '  File "/venv/lib/python3.12/site-packages/client.py", line 9, in get\n'
        "    raise OSError('down')\n"
        "OSError: down\n"
        "\n"
        "During handling of the above exception, another exception occurred:\n"
        "\n"
        "Traceback (most recent call last):\n"
        '  File "/srv/shop/tasks.py", line 5, in fetch\n'
        "    raise RuntimeError('gave up')\n"
        "    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "RuntimeError: gave up"
    )
    parsed = tracebacks.parse(text)
    assert [(f.line, f.function) for f in parsed.user_frames] == [(3, "fetch"), (5, "fetch")]
    assert parsed.library_frames == 1
    assert parsed.exception == "RuntimeError: gave up"
    assert "".join(block.text for block in parsed.blocks).count("    ^") == 1
    assert "\n".join(block.text for block in parsed.blocks) == text


def test_text_that_is_no_traceback_is_kept_as_text() -> None:
    parsed = tracebacks.parse("worker lost\n  with no frames")
    assert parsed.user_frames == [] and parsed.library_frames == 0
    assert parsed.exception == ""
    assert [block.text for block in parsed.blocks] == ["worker lost\n  with no frames"]
