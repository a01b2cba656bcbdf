"""tools/typecheck.py lays the package out as installed (pyproject's package-dir) and names errors by source path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def typecheck(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("typecheck_tool", ROOT / "tools" / "typecheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "TREE", tmp_path)
    return module


def test_the_tree_is_the_installed_package_and_errors_name_the_source_files(typecheck, tmp_path):
    mapping = typecheck.package_dirs()
    assert mapping["spanguard.review"] == ROOT / "review"
    links = typecheck.build_tree(mapping)
    assert (tmp_path / "spanguard" / "review" / "store.py").resolve() == ROOT / "review" / "store.py"
    assert (tmp_path / "spanguard" / "review" / "evalgate" / "runner.py").resolve() == (
        ROOT / "review" / "evalgate" / "runner.py"
    )
    assert (tmp_path / "spanguard" / "__init__.py").resolve() == ROOT / "spanguard" / "__init__.py"
    line = "spanguard/review/evalgate/runner.py:3: error: boom  [misc]"
    assert typecheck.to_source(line, links) == "review/evalgate/runner.py:3: error: boom  [misc]"
    assert typecheck.to_source("Found 1 error in 1 file", links) == "Found 1 error in 1 file"
    # Rebuilt on every run: a module added since the last one is in the tree.
    assert typecheck.build_tree(mapping) == links
