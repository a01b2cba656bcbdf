"""The code blocks of the docs are valid: every Python block parses, every YAML and TOML block loads.

(``ruff format --check .`` in ``make lint`` formats the Python blocks of Markdown files, but skips one that does not
parse without a word.)
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ImportError:  # Python 3.10: tomli, which mypy (in the test extra) depends on there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^([ \t]*)```(\w*)[^\n]*\n(.*?)^\1```", re.S | re.M)
LOADERS = {"python": ast.parse, "py": ast.parse, "yaml": yaml.safe_load, "yml": yaml.safe_load, "toml": tomllib.loads}


def code_blocks(path: Path) -> list[tuple[int, str, str]]:
    """Each fenced block of the Markdown file: its first line, its language and its text (dedented)."""
    text = path.read_text("utf-8")
    return [
        (text.count("\n", 0, found.start()) + 1, found.group(2), textwrap.dedent(found.group(3)))
        for found in FENCE.finditer(text)
    ]


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("path", DOCS, ids=[path.name for path in DOCS])
def test_every_python_yaml_and_toml_block_of_the_docs_is_valid(path: Path) -> None:
    bad = []
    for line, language, text in code_blocks(path):
        load = LOADERS.get(language)
        if load is None:
            continue
        try:
            load(text)
        except Exception as error:  # each kind of block fails its own way
            bad.append(f"{path.name}:{line}: {language}: {type(error).__name__}: {error}")
    assert not bad, "\n".join(bad)
