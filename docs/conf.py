"""Sphinx configuration of brainsweep's documentation (``pip install -e ".[docs]"``).

Build, warnings as errors (what CI runs)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Pages are Markdown read by MyST; nothing here needs the network (no intersphinx, no remote
images, no autodoc imports of the project). The reference pages under ``reference/`` are
generated from the code by ``docs/generate.py``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

_PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))

project = "brainsweep"
author = "brainsweep contributors"
copyright = "brainsweep contributors"
release = _PYPROJECT["project"]["version"]
version = release

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Headings up to ### get anchors, so pages link to sections as [text](page.md#a-heading).
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"brainsweep {release}"
html_static_path: list[str] = []
