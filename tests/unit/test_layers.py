"""The layer rules that the import contracts cannot see, checked on the source.

Only the data layer (``djqueue/db/``) holds SQL and writes queue and schedule state;
the migrations hold their own. Everything else reads models, and changes state by
calling the data layer. And the type-only imports that point up the layers (left out of
the import contracts, see setup.cfg) are the known few.
"""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "djqueue"
DATA_LAYER = PACKAGE / "db"
MIGRATIONS = PACKAGE / "migrations"

# A string that is an SQL statement: it starts with a statement's keyword, in capitals.
STATEMENT = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|LISTEN|UNLISTEN|NOTIFY|LOCK|TRUNCATE|"
    r"CREATE|ALTER|DROP|SET|VACUUM|ANALYZE)\s"
)
# ORM calls that write rows.
QUERYSET_WRITES = {"update", "create", "delete", "bulk_create", "bulk_update", "get_or_create"}
QUERYSET_WRITES |= {"update_or_create"}
# What a queryset chain is made of: a write at the end of one writes rows.
QUERYSET_PARTS = {"objects", "_default_manager", "filter", "exclude", "using", "all"}
QUERYSET_PARTS |= {"select_related", "prefetch_related", "order_by", "get_queryset"}
# Row instances write themselves with these.
ROW_WRITES = {"save", "delete"}


def modules_outside_the_data_layer() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if not path.is_relative_to(DATA_LAYER) and not path.is_relative_to(MIGRATIONS):
            yield path


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string nodes that are docstrings."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.add(id(value))
    return found


def chain(node: ast.expr) -> list[str]:
    """The attribute and call names of a receiver chain: ``Job.objects.filter(...)``."""
    names = []
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return names


def offences(source: str, where: str) -> Iterator[str]:
    """What in ``source`` (the file ``where``) is SQL or a write of rows."""
    tree = ast.parse(source, where)
    skipped = docstrings(tree)
    for node in ast.walk(tree):
        is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_text and id(node) not in skipped and STATEMENT.match(node.value):
            yield f"{where}:{node.lineno}: SQL text {node.value.strip()[:40]!r}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            verb, receiver = node.func.attr, chain(node.func.value)
            if verb == "execute" and "cursor" in receiver:
                yield f"{where}:{node.lineno}: runs SQL through a cursor"
            if verb == "cursor":
                yield f"{where}:{node.lineno}: opens a database cursor"
            if verb in QUERYSET_WRITES and QUERYSET_PARTS & set(receiver):
                yield f"{where}:{node.lineno}: writes rows with .{verb}()"
            if verb in ROW_WRITES and not node.args and not node.keywords:
                yield f"{where}:{node.lineno}: writes a row with .{verb}()"


def test_no_sql_and_no_state_writes_outside_the_data_layer() -> None:
    found = [
        line
        for path in modules_outside_the_data_layer()
        for line in offences(path.read_text(), str(path.relative_to(PACKAGE.parent)))
    ]
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('QUERY = "SELECT 1"', ["SQL text"]),
        ('def f(c):\n    c.cursor().execute("x")', ["runs SQL", "opens a database cursor"]),
        ("Job.objects.filter(id=1).update(state='X')", ["writes rows with .update()"]),
        ("Job.objects.using('default').create(id=1)", ["writes rows with .create()"]),
        ("row.save()", ["writes a row with .save()"]),
        ("options.update(queue='a')", []),
        ('"""Workers SELECT jobs and LISTEN."""', []),
    ],
)
def test_the_check_sees_what_it_should(source: str, expected: list[str]) -> None:
    found = list(offences(source, "example.py"))
    assert len(found) == len(expected), found
    for line, words in zip(found, expected, strict=True):
        assert words in line


# Layers from the bottom up (djqueue/<folder>/): an import may only point down.
RANK = {"core": 0, "db": 1, "client": 2, "runtime": 3, "beat": 3, "integrations": 3}
RANK |= {"ops": 4, "management": 5}
# Imports under TYPE_CHECKING that point up: annotations naming the client's Task.
TYPE_ONLY_UPWARD = {
    ("djqueue.core.registry", "djqueue.client.definition"),
    ("djqueue.core.executor", "djqueue.client.definition"),
    ("djqueue.core.job_request", "djqueue.client.definition"),
}


def layer(module: str) -> int | None:
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 2 else None


def type_only_imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.module:
                    yield inner.module


def test_type_only_imports_that_point_up_are_the_known_few() -> None:
    upward = set()
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for imported in type_only_imports(path):
            low, high = layer(module), layer(imported)
            if low is not None and high is not None and high > low:
                upward.add((module, imported))
    assert upward == TYPE_ONLY_UPWARD


def test_each_statement_has_one_name_across_the_sql_modules() -> None:
    # djqueue.db.sql gives every module's statements under one name: two with the same
    # name would make one of them unreachable.
    defined: dict[str, list[str]] = {}
    for path in sorted((DATA_LAYER / "sql").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and not target.id.startswith("_"):
                        defined.setdefault(target.id, []).append(path.name)
    assert {name: files for name, files in defined.items() if len(files) > 1} == {}
