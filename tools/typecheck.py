"""Run mypy on spanguard as it is installed, not as the source tree looks.

``pyproject.toml`` maps the top-level folders into one import package (setuptools ``package-dir``: ``review/`` is
``spanguard.review``), which mypy cannot follow from the tree. This script builds ``.typecheck/spanguard/``, a tree of
symlinks laid out like the installed package, runs mypy on it with the ``[tool.mypy]`` settings, and prints each error
under the source file's own path (``review/store.py``, not ``.typecheck/spanguard/review/store.py``).
See docs/contributing.md ("Type checking").
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: mypy depends on tomli there
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / ".typecheck"


def package_dirs() -> dict[str, Path]:
    """Return pyproject's package-dir: each mapped import package and the folder it comes from."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        setuptools = tomllib.load(f)["tool"]["setuptools"]
    return {name: ROOT / folder for name, folder in setuptools["package-dir"].items()}


def build_tree(mapping: dict[str, Path]) -> dict[Path, Path]:
    """Lay the mapped folders out as the installed package under .typecheck/; return tree path -> source path."""
    shutil.rmtree(TREE / "spanguard", ignore_errors=True)
    links: dict[Path, Path] = {}
    # Parents before children, so a child package's link goes inside its parent's directory.
    for name in sorted(mapping, key=lambda n: n.count(".")):
        target = TREE.joinpath(*name.split("."))
        target.mkdir(parents=True, exist_ok=True)
        depth = name.count(".") + 1
        mapped_children = {n.rpartition(".")[2] for n in mapping if n.startswith(name + ".") and n.count(".") == depth}
        for entry in mapping[name].iterdir():
            if entry.name in mapped_children or entry.name == "__pycache__":
                continue
            link = target / entry.name
            link.symlink_to(entry)
            links[link.relative_to(TREE)] = entry.relative_to(ROOT)
    return links


def to_source(line: str, links: dict[Path, Path]) -> str:
    """Rewrite an error line's tree path (spanguard/review/store.py) to its source path (review/store.py)."""
    match = re.match(r"([^:\s]+\.pyi?)(:.*)", line)
    if not match:
        return line
    path = Path(match.group(1))
    for depth in range(len(path.parts), 0, -1):
        head = Path(*path.parts[:depth])
        if head in links:
            return str(links[head].joinpath(*path.parts[depth:])) + match.group(2)
    return line


def main(argv: list[str]) -> int:
    TREE.mkdir(exist_ok=True)
    with (TREE / ".lock").open("w") as lock:
        # Two runs at once (two `make lint` in one checkout) would rebuild the tree under each other.
        fcntl.flock(lock, fcntl.LOCK_EX)
        links = build_tree(package_dirs())
        command = [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "-p",
            "spanguard",
            *argv,
        ]
        # Run inside the tree: the source root holds a spanguard/ folder that is not the whole package.
        env = {**os.environ, "MYPYPATH": str(TREE)}
        result = subprocess.run(command, cwd=TREE, env=env, capture_output=True, text=True)
    for line in result.stdout.splitlines():
        print(to_source(line, links))
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
