"""The distribution: a wheel carries every part of the package and its entry points, and the CLI runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_maps_top_level_folders_into_the_package(tmp_path):
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # The build is silent: every folder that ships files is a package of the configuration.
    assert "BuildBackendWarning" not in built.stderr + built.stdout, (built.stderr + built.stdout)[-2000:]
    (wheel,) = tmp_path.glob("spanguard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "spanguard/__init__.py",
        "spanguard/semconv/__init__.py",
        "spanguard/instrumentation/openai.py",
        "spanguard/instrumentation/anthropic.py",
        "spanguard/processors/__init__.py",
        "spanguard/processors/risk/default_rules.yaml",
        "spanguard/processors/risk/engine.py",
        "spanguard/processors/tail_sampling/sampler.py",
        "spanguard/processors/memory_limiter/factory.py",
        "spanguard/collector/receivers/otlp/receiver.py",
        "spanguard/collector/extensions/health_check/factory.py",
        "spanguard/exporters/__init__.py",
        "spanguard/collector/__init__.py",
        "spanguard/review/__init__.py",
        "spanguard/review/static/index.html",
        "spanguard/review/static/app.js",
        "spanguard/review/static/style.css",
        "spanguard/review/migrations/env.py",
        "spanguard/review/migrations/script.py.mako",
        "spanguard/review/migrations/versions/0001_initial.py",
        "spanguard/review/migrations/versions/0002_decisions_tokens.py",
        "spanguard/exporters/review/items.py",
        "spanguard/exporters/exporterhelper/exporter.py",
    ):
        assert module in names
    assert not any(name.startswith(("tests/", "examples/", "bench/")) for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[opentelemetry_instrumentor]" in text
    assert "spanguard.instrumentation.openai:OpenAIInstrumentor" in text

    # Installed on its own (no editable finder: -S skips .pth files), the wheel imports and instruments.
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])}
    result = subprocess.run(
        [sys.executable, "-S", "-c", "import spanguard.instrumentation.openai as m, spanguard; print(m.__file__)"],
        env=env,
        cwd=tmp_path,  # not the repository, whose spanguard/ folder would shadow the wheel
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(target))

    # The wheel carries the review store's migrations: a new database is migrated from the installed package.
    migrate = (
        "from spanguard.review.store import ReviewStore\n"
        "store = ReviewStore('sqlite:///r.db')\nstore.migrate()\nprint(store.revision())"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", migrate], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0007"


def test_cli_prints_version_and_attributes():
    version = subprocess.run([sys.executable, "-m", "spanguard.cli", "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == "spanguard 0.1.0"
    table = subprocess.run([sys.executable, "-m", "spanguard.cli", "attributes"], capture_output=True, text=True)
    assert "spanguard.model.pinned" in table.stdout


SERVER_PACKAGES = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "prometheus_client")


def test_the_base_install_holds_what_an_instrumented_app_needs_and_no_server_package():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {re.split(r"[<>=\[ ]", requirement)[0].replace("-", "_") for requirement in project["dependencies"]}
    assert not base & set(SERVER_PACKAGES), base & set(SERVER_PACKAGES)
    extras = project["optional-dependencies"]
    assert {"collector", "review", "all"} <= set(extras)
    assert any(r.startswith("fastapi") for r in extras["review"]) and any(
        r.startswith("uvicorn") for r in extras["collector"]
    )


def test_importing_spanguard_and_instrument_load_no_server_package():
    script = (
        "import sys, spanguard\n"
        "spanguard.instrument(capture_content=True)\n"
        f"print(sorted({{m.partition('.')[0] for m in sys.modules}} & set({SERVER_PACKAGES!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


# A command whose extra is not installed: its packages made unimportable, as on a base install.
WITHOUT = """
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {names!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Absent())
from spanguard.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_command_whose_extra_is_missing_says_how_to_install_it():
    script = WITHOUT.format(names=["sqlalchemy", "fastapi", "uvicorn", "starlette", "prometheus_client", "grpc_status"])

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)

    listing = run("--help")
    assert listing.returncode == 0 and "(needs spanguard[review])" in " ".join(listing.stdout.split())
    review = run("review", "serve", "--port", "0")
    assert review.returncode == 1
    assert "install the review extra: pip install 'spanguard[review]'" in review.stderr
    assert "Traceback" not in review.stderr
    assert run("attributes").returncode == 0


def test_spanguard_without_a_command_is_a_usage_error():
    result = subprocess.run([sys.executable, "-m", "spanguard.cli"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "a command is required" in result.stderr
