"""The README's quickstart is the program examples/quickstart.py, and the README's one line runs it against the fake
provider, printing its spans."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "examples" / "quickstart.py"


def test_the_readme_shows_the_quickstart_program_as_it_is() -> None:
    text = PROGRAM.read_text()
    code = text[text.index('"""', 3) + 3 :].strip()
    assert f"```python\n{code}\n```" in (ROOT / "README.md").read_text()


def test_the_one_line_runs_the_quickstart_against_the_fake_provider() -> None:
    line = "OTEL_TRACES_EXPORTER=console python examples/fake_provider.py --run examples/quickstart.py"
    assert line in (ROOT / "README.md").read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))}
    result = subprocess.run(
        [sys.executable, "examples/fake_provider.py", "--run", "examples/quickstart.py"],
        env={**env, "OTEL_TRACES_EXPORTER": "console"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Hello from the fake provider." in result.stdout
    assert '"name": "chat gpt-4o-2024-08-06"' in result.stdout
    assert '"gen_ai.conversation.id": "conv-42"' in result.stdout
