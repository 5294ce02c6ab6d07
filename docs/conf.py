"""Sphinx configuration for djqueue's documentation (Markdown pages read by MyST)."""

from __future__ import annotations

project = "djqueue"
author = "djqueue contributors"
copyright = "2026, djqueue contributors"
release = "0.1.0"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["colon_fence"]
# Links such as [Results](results.md#waiting) are checked like the rest.
myst_heading_anchors = 4
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "djqueue"
