"""A stored traceback, parsed for the job page: the user's frames first, library frames
folded (docs/monitoring.md#the-job-page).

A traceback is text written on the worker's host; it is parsed, never evaluated. A
frame is a library frame when its file lies in an installed package (``site-packages``,
``dist-packages``), in Python's own library, in a frozen module, or in djqueue itself;
every other frame is the user's.
"""

from __future__ import annotations

import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from djqueue.core import text as text_module

# '  File "/app/shop/tasks.py", line 12, in build_report'
_FRAME = re.compile(r'^ {2}File "(?P<file>.*)", line (?P<line>\d+), in (?P<function>.*)$')
# Lines that belong to the frame above: its source line, the carets under it.
_FRAME_BODY = re.compile(r"^ {4}")
_LIBRARY_PARTS = ("/site-packages/", "/dist-packages/", "\\site-packages\\")
_PYTHON_LIBRARY = re.compile(r"[/\\]lib[/\\]python3[.\d]*[/\\]")
# The exception line(s) shown above the frames; the whole text follows anyway.
EXCEPTION_CHARACTERS = 1_000
_DJQUEUE = str(Path(__file__).resolve().parents[1]) + "/"


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    function: str
    library: bool


@dataclass(frozen=True)
class Part:
    """A run of the traceback as written: one frame (its File line, source line and
    carets), or lines between frames (the heading, the exception, "During handling of
    the above exception ...")."""

    frame: Frame | None
    text: str


@dataclass(frozen=True)
class Parsed:
    parts: tuple[Part, ...]
    # The last lines that are not frames: the exception raised, as Python wrote it.
    exception: str

    @property
    def user_frames(self) -> list[Frame]:
        return [p.frame for p in self.parts if p.frame is not None and not p.frame.library]

    @property
    def library_frames(self) -> int:
        return sum(1 for p in self.parts if p.frame is not None and p.frame.library)

    @property
    def blocks(self) -> list[Block]:
        """The parts in order, each run of library frames made one folded block."""
        made: list[Block] = []
        for part in self.parts:
            kind = "text" if part.frame is None else "library" if part.frame.library else "user"
            if kind == "library" and made and made[-1].kind == "library":
                last = made.pop()
                made.append(Block(kind, f"{last.text}\n{part.text}", last.frames + 1))
            else:
                made.append(Block(kind, part.text, 0 if part.frame is None else 1))
        return made


@dataclass(frozen=True)
class Block:
    kind: str  # user, library (a run of library frames), text
    text: str
    frames: int


def is_library(file: str) -> bool:
    """Whether ``file`` (a path as a traceback names it) is library code."""
    if file.startswith("<") or any(part in file for part in _LIBRARY_PARTS):
        return True
    if file.startswith(_DJQUEUE) or _PYTHON_LIBRARY.search(file):
        return True
    stdlib = sysconfig.get_paths().get("stdlib")
    return stdlib is not None and file.startswith(stdlib + "/")


def parse(text: str) -> Parsed:
    """The frames and other lines of ``text``, in order."""
    parts: list[Part] = []
    lines: list[str] = []
    frame: list[str] = []
    found: re.Match[str] | None = None

    def close_frame() -> None:
        nonlocal found
        if found is not None:
            file = found["file"]
            parts.append(
                Part(
                    Frame(file, int(found["line"]), found["function"], is_library(file)),
                    "\n".join(frame),
                )
            )
            found = None
            frame.clear()

    def close_lines() -> None:
        if lines:
            parts.append(Part(None, "\n".join(lines)))
            lines.clear()

    for line in text.splitlines():
        match = _FRAME.match(line)
        if match is not None:
            close_frame()
            close_lines()
            found = match
            frame.append(line)
        elif found is not None and _FRAME_BODY.match(line):
            frame.append(line)
        else:
            close_frame()
            lines.append(line)
    close_frame()
    # Without a frame, the text is not a traceback Python wrote: it has no exception line.
    tail = "\n".join(lines).strip() if parts else ""
    close_lines()
    return Parsed(tuple(parts), text_module.shortened(tail, EXCEPTION_CHARACTERS))
