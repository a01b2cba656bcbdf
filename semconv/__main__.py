"""Write ``docs/attributes.md`` (or print it with ``--check``-less ``-``) from the declarations."""

from __future__ import annotations

import sys
from pathlib import Path

from spanguard.semconv import render_markdown


def main(argv: list[str]) -> int:
    """Write the generated attribute table to the path given (default ``docs/attributes.md``)."""
    target = argv[0] if argv else "docs/attributes.md"
    if target == "-":
        sys.stdout.write(render_markdown())
        return 0
    Path(target).write_text(render_markdown(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
