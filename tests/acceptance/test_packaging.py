"""The wheel that `pip install .` builds carries everything the app needs at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_migrations_templates_types_and_plugin(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO_ROOT),
        ],
        check=True,
        timeout=180,
    )
    [wheel] = tmp_path.glob("djqueue-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "djqueue/py.typed" in names
    assert "djqueue/migrations/0001_initial.py" in names
    assert "djqueue/templates/djqueue/admin/dashboard.html" in names
    assert "djqueue/management/commands/runworker.py" in names
    assert not any(name.startswith(("tests/", "example_project/", "benchmarks/")) for name in names)
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "djqueue = djqueue.pytest_plugin" in text
