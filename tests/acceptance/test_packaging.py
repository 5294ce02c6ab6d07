"""The wheel that ``python -m build`` makes (docs/installation.md) carries everything the
app needs at run time: migrations, templates, static files, ``py.typed``, the plugin."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel built as the installation page says: sdist first, the wheel from it."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO_ROOT)],
        check=True,
        capture_output=True,
        timeout=180,
    )
    [path] = out.glob("djqueue-*.whl")
    return zipfile.ZipFile(path)


def _package_files(suffixes: tuple[str, ...] = ()) -> set[str]:
    """Files of the package in the checkout, as paths inside the wheel."""
    found = set()
    for path in (REPO_ROOT / "djqueue").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            relative = path.relative_to(REPO_ROOT).as_posix()
            if not suffixes or relative.endswith(suffixes):
                found.add(relative)
    return found


def test_every_file_of_the_package_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    assert _package_files() - set(wheel.namelist()) == set()


def test_migrations_templates_static_files_and_types_are_there(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "djqueue/py.typed" in names
    assert "djqueue/migrations/0001_initial.py" in names
    assert "djqueue/templates/djqueue/admin/overview.html" in names
    migrations = {name for name in _package_files((".py",)) if "/migrations/" in name}
    templates = _package_files((".html", ".txt"))
    static = {name for name in _package_files() if "/static/" in name}
    assert migrations and templates
    assert (migrations | templates | static) <= names


def test_commands_and_the_pytest_plugin_are_there(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert any(name.endswith("management/commands/runworker.py") for name in names)
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "djqueue = djqueue.pytest_plugin" in wheel.read(entry_points).decode()


def test_nothing_but_the_package_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/", 1)[0] for name in wheel.namelist()}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"djqueue"}
