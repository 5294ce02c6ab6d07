"""Figures that a suite's tests count (the chaos suite's, the worker hosts'), printed in
a section of their own at the end of the run."""

from __future__ import annotations

from typing import Any

import pytest


class Figures:
    """The figures of one suite, kept in the run's stash under a key of their own."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.key = pytest.StashKey[list[tuple[str, dict[str, Any]]]]()

    def record(self, request: pytest.FixtureRequest) -> dict[str, Any]:
        """A dict the test fills with what it counted; printed at the end of the run."""
        found: dict[str, Any] = {}
        request.config.stash.setdefault(self.key, []).append((request.node.nodeid, found))
        return found

    def print(self, terminalreporter: Any, config: pytest.Config) -> None:
        """Print every recorded test's figures, if any test recorded some."""
        recorded = config.stash.get(self.key, [])
        if not recorded:
            return
        terminalreporter.section(self.title)
        for nodeid, found in recorded:
            terminalreporter.write_line(nodeid.rpartition("::")[2])
            for name, value in found.items():
                shown = f"{value:.2f}" if isinstance(value, float) else str(value)
                terminalreporter.write_line(f"    {name:<44} {shown}")
