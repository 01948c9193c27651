"""The README and the documentation pages: short, linked, and their commands as the code has them.

- The README stays the door, not the house: at most 250 lines.
- Every relative link (and image) in the README, the changelog and every page under ``docs/``
  points to a file that exists, and a ``#fragment`` into a Markdown file to one of its headings.
- Every ``python -m ...`` command in the README's ``bash`` blocks parses with the parser of the
  command it names (flags, arguments), and every repository path the pages name exists.
- CI runs the README's test command and builds the docs with warnings as errors.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
PAGES = sorted([README, ROOT / "CHANGELOG.md", *(ROOT / "docs").rglob("*.md")])
PAGES = [page for page in PAGES if "_build" not in page.relative_to(ROOT).parts]

README_MAX_LINES = 250
_FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
_BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_REPO_PATH = re.compile(r"(?<![\w./-])((?:spaces|benchmarks|tests|search|trainables|analysis|docs)/[\w./-]*\.(?:yaml|py|json|md|png|txt))\b")


def prose(text: str) -> str:
    """The page without its fenced code blocks (links and headings there are code, not Markdown)."""
    return _FENCE.sub("", text)


def relative_links(text: str) -> list[str]:
    """Targets of the page's Markdown links and images that point into the repository."""
    targets = _LINK.findall(prose(text))
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def slug(heading: str) -> str:
    """The anchor GitHub and MyST give a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").replace("*", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(m.group(2)) for m in _HEADING.finditer(prose(path.read_text(encoding="utf-8")))}


def broken_links(page: Path) -> list[str]:
    """``target: why`` for each relative link of ``page`` that does not resolve."""
    problems = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        file_part, _, fragment = target.partition("#")
        path = (page.parent / file_part).resolve()
        if not path.exists():
            problems.append(f"{target}: no such file")
        elif fragment and path.suffix == ".md" and fragment not in anchors(path):
            problems.append(f"{target}: no heading #{fragment} in {path.name}")
    return problems


def test_the_readme_is_at_most_250_lines():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/ (at most {README_MAX_LINES})"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_named_exists(page):
    named = set(_REPO_PATH.findall(page.read_text(encoding="utf-8")))
    assert sorted(p for p in named if not (ROOT / p).exists()) == []


def test_the_link_check_sees_what_it_looks_for(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# There\n\n## A `flag` section: yes\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](docs/there.md) [anchor](docs/there.md#a-flag-section-yes) ![img](docs/there.md)\n"
        "[gone](docs/missing.md) [bad anchor](docs/there.md#nope) [web](https://example.org/x.md) [self](#top)\n"
        "```\n[in code](not/checked.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page) == ["docs/missing.md: no such file", "docs/there.md#nope: no heading #nope in there.md"]


def _parser_of(module: str, args: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser a ``python -m MODULE ARGS`` command line reaches, and the arguments it parses."""
    if module == "analysis":
        commands = importlib.import_module("analysis.__main__").COMMANDS
        assert args and args[0] in commands, f"python -m analysis {args[:1]}: not a command ({', '.join(commands)})"
        return importlib.import_module(commands[args[0]]).build_parser(), args[1:]
    return importlib.import_module(module).build_parser(), args


def readme_commands() -> list[str]:
    lines = []
    for block in _BASH_BLOCK.findall(README.read_text(encoding="utf-8")):
        lines += [line.strip() for line in block.splitlines() if line.strip().startswith("python -m ")]
    return lines


@pytest.mark.parametrize("command", readme_commands())
def test_each_readme_command_parses_as_written(command):
    argv = shlex.split(command)
    module, args = argv[2], argv[3:]
    if module == "pytest":
        return
    parser, rest = _parser_of(module, args)
    parsed = parser.parse_args(rest)  # a misspelt flag or a missing argument exits here
    spec = getattr(parsed, "spec", None)
    if spec is not None:
        assert (ROOT / spec).is_file(), f"{command}: {spec} does not exist"


def test_ci_runs_the_readme_test_command_and_builds_the_docs_with_warnings_as_errors():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pytest" in readme_commands() and "\npython -m pytest" in ci
    assert "python -m sphinx -W --keep-going -b html docs docs/_build/html" in ci
    assert ci.index("python -m sphinx") < ci.index("\npython -m pytest"), "the docs build before the tests run"
    assert re.search(r"pip install .*-e \"\.\[[\w,]*docs[\w,]*\]\"", ci), "CI installs the docs extra"
