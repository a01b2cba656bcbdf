"""docs/contributing.md's worked examples, for the tests that run them as written: a section's modules, and a
package of them added to one of spanguard's packages."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "contributing.md"


def section(heading: str) -> str:
    """The text of the section ``## <heading>`` of docs/contributing.md."""
    return DOC.read_text("utf-8").split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def example_modules(heading: str, folder: str) -> dict[str, str]:
    """The section's Python blocks whose first line is ``# <folder>/<name>.py``, by file name."""
    return dict(re.findall(rf"```python\n# {re.escape(folder)}/(\w+\.py)\n(.*?)```", section(heading), re.S))


def add_to_package(
    parent: ModuleType, files: dict[str, str], where: Path, monkeypatch: pytest.MonkeyPatch, package: str | None = None
) -> None:
    """Make ``files`` importable under ``parent`` (a spanguard package): as the package ``package`` (with an
    ``__init__.py``) or, without it, as modules of ``parent`` itself."""
    folder = where if package is None else where / package
    folder.mkdir(parents=True, exist_ok=True)
    if package is not None:
        (folder / "__init__.py").write_text('"""A worked example of docs/contributing.md."""\n')
    for name, text in files.items():
        (folder / name).write_text(text)
    monkeypatch.setattr(parent, "__path__", [*parent.__path__, str(where)])
