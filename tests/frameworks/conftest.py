"""The frameworks' own virtual environment: LangChain, LangGraph (with its SQLite checkpointer) and the OpenAI Agents
SDK on top of the project's SDKs.

The venv reads the project's environment (spanguard, the ``openai``/``anthropic`` SDKs, OpenTelemetry) through a
``.pth`` file and holds only the frameworks and what they bring, so the frameworks never change what the other tests
run against. It is built once under ``tests/.venvs/frameworks`` and rebuilt when the requirements change.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REQUIREMENTS = (
    "langchain-openai>=1.0",
    "langgraph>=1.0",
    "langgraph-checkpoint-sqlite>=2",  # a checkpointer that outlives the process, for the gate resume tests
    "openai-agents>=0.20",
)
VENV = Path(__file__).resolve().parents[1] / ".venvs" / "frameworks"


def _python() -> Path:
    return VENV / "bin" / "python"


def _build() -> None:
    venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    purelib = Path(sysconfig.get_paths()["purelib"])
    site = Path(
        subprocess.check_output([str(_python()), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
        .decode()
        .strip()
    )
    # addsitedir, not a plain path: the project's editable install is itself a .pth in that directory.
    (site / "spanguard-project.pth").write_text(f"import site; site.addsitedir({str(purelib)!r})\n")
    log = VENV / "pip.log"
    with log.open("w") as out:
        code = subprocess.call(
            [str(_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *REQUIREMENTS],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if code != 0:
        raise RuntimeError(f"pip install {' '.join(REQUIREMENTS)} failed (exit {code}); see {log}")


@pytest.fixture(scope="session")
def framework_python() -> Path:
    """The frameworks venv's interpreter (built on first use); the tests skip when it cannot be built here."""
    marker = VENV / "requirements.json"
    wanted = json.dumps([sys.version, *REQUIREMENTS])
    VENV.parent.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers share the venv: one builds it, the others wait for it rather than clear it under its feet.
    with (VENV.parent / "frameworks.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (marker.exists() and marker.read_text() == wanted and _python().exists()):
            try:
                _build()
            except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
                pytest.skip(f"the frameworks venv could not be built (PyPI unreachable?): {error}")
            marker.write_text(wanted)
    return _python()
