"""Virtual environments the tests build once and reuse, under ``tests/.venvs/<name>``, rebuilt when their
requirements change.

Two kinds: one that reads the project's environment through a ``.pth`` file and adds only what it lists (the
frameworks), and one that is isolated, holding its own OpenTelemetry and SDK versions (the peer instrumentations,
which must run as their users run them). pytest-xdist workers share a venv: one builds it, the others wait on a lock.
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

VENVS = Path(__file__).resolve().parent / ".venvs"


def _python(path: Path) -> Path:
    return path / "bin" / "python"


def _build(path: Path, requirements: tuple[str, ...], *, inherit: bool) -> None:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    if inherit:
        purelib = Path(sysconfig.get_paths()["purelib"])
        site = Path(
            subprocess.check_output(
                [str(_python(path)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
            )
            .decode()
            .strip()
        )
        # addsitedir, not a plain path: the project's editable install is itself a .pth in that directory.
        (site / "spanguard-project.pth").write_text(f"import site; site.addsitedir({str(purelib)!r})\n")
    log = path / "pip.log"
    with log.open("w") as out:
        code = subprocess.call(
            [str(_python(path)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if code != 0:
        raise RuntimeError(f"pip install {' '.join(requirements)} failed (exit {code}); see {log}")


def venv_python(name: str, requirements: tuple[str, ...], *, inherit: bool) -> Path:
    """The interpreter of venv ``name`` with ``requirements`` installed (built on first use); skips the calling
    test when it cannot be built here (PyPI unreachable)."""
    path = VENVS / name
    marker = path / "requirements.json"
    wanted = json.dumps([sys.version, inherit, *requirements])
    VENVS.mkdir(parents=True, exist_ok=True)
    with (VENVS / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (marker.exists() and marker.read_text() == wanted and _python(path).exists()):
            try:
                _build(path, requirements, inherit=inherit)
            except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
                pytest.skip(f"the {name} venv could not be built (PyPI unreachable?): {error}")
            marker.write_text(wanted)
    return _python(path)
