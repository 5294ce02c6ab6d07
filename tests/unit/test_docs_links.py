"""Every documentation page can be reached: from the README and from the docs' own index."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# [text](target) in Markdown, the target up to an optional #anchor.
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _pages() -> list[str]:
    return sorted(path.name for path in DOCS.glob("*.md") if path.name != "index.md")


def _links(path: Path) -> set[str]:
    return set(LINK.findall(path.read_text()))


def _toctree(path: Path) -> set[str]:
    text = path.read_text()
    block = text[text.index("```{toctree}") :]
    block = block[: block.index("```", 3)]
    names = (line.strip() for line in block.splitlines()[1:])
    return {name + ".md" for name in names if re.fullmatch(r"[\w-]+", name)}


def test_readme_links_the_documentation_hub() -> None:
    assert "docs/index.md" in _links(ROOT / "README.md")


@pytest.mark.parametrize("page", _pages())
def test_every_page_is_linked_from_the_readme(page: str) -> None:
    assert f"docs/{page}" in _links(ROOT / "README.md"), (
        f"README.md does not link docs/{page}: add it to its Documentation list"
    )


@pytest.mark.parametrize("page", _pages())
def test_every_page_is_in_the_index(page: str) -> None:
    index = DOCS / "index.md"
    assert page in _links(index), f"docs/index.md's Contents does not link {page}"
    assert page in _toctree(index), f"docs/index.md's toctree does not list {page[:-3]}"


def test_the_readme_links_only_pages_that_exist() -> None:
    local = {link for link in _links(ROOT / "README.md") if "://" not in link}
    assert local, "the README links no local file"
    assert {link for link in local if not (ROOT / link).exists()} == set()
