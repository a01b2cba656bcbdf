"""``instrument()`` finds its instrumentors through the ``opentelemetry_instrumentor`` entry points named
``spanguard_*``, and leaves other projects' entry points in that group alone."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import spanguard
from spanguard import _instrument

PLUGIN = '''
from typing import ClassVar

from spanguard.instrumentation._base import SpanguardInstrumentor, Target


def _marking(get_telemetry):
    def wrapper(wrapped, instance, args, kwargs):
        return "instrumented: " + wrapped(*args, **kwargs)

    return wrapper


class FakeLibInstrumentor(SpanguardInstrumentor):
    scope: ClassVar[str] = "tests.fakelib"
    requirement: ClassVar[str] = "fakelib >= 1"
    library: ClassVar[str] = "fakelib"

    def targets(self):
        return [Target("fakelib", "Client.generate", _marking)]


class AbsentLibInstrumentor(FakeLibInstrumentor):
    library: ClassVar[str] = "no_such_library_here.sub"


class NotSpanguard:
    """A spanguard_-named entry point that is no SpanguardInstrumentor."""
'''

THIRD_PARTY = """
ACTIVATED = []


class ThirdPartyInstrumentor:
    def instrument(self, **kwargs):
        ACTIVATED.append(kwargs)
"""

FAKELIB = """
class Client:
    def generate(self, prompt):
        return "answer to " + prompt
"""

ENTRY_POINTS = """
[opentelemetry_instrumentor]
spanguard_fakelib = fakelib_instrumentor:FakeLibInstrumentor
spanguard_absentlib = fakelib_instrumentor:AbsentLibInstrumentor
fakelib = third_party_fakelib:ThirdPartyInstrumentor
"""


def install(tmp_path: Path, entry_points: str = ENTRY_POINTS) -> Path:
    """A test distribution (a ``*.dist-info`` folder with its entry points) and its modules in ``tmp_path``."""
    (tmp_path / "fakelib.py").write_text(FAKELIB)
    (tmp_path / "fakelib_instrumentor.py").write_text(PLUGIN)
    (tmp_path / "third_party_fakelib.py").write_text(THIRD_PARTY)
    for name in ("spanguard_test_plugin", "fakelib"):  # the plugin, and the library it requires
        info = tmp_path / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (tmp_path / "spanguard_test_plugin-1.0.dist-info" / "entry_points.txt").write_text(entry_points)
    return tmp_path


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(install(tmp_path)))
    yield
    spanguard.uninstrument()
    for name in ("fakelib", "fakelib_instrumentor", "third_party_fakelib"):
        sys.modules.pop(name, None)


def test_the_built_in_instrumentors_are_the_pyproject_entry_points():
    names = {entry_point.name: entry_point.value for entry_point in _instrument.spanguard_entry_points()}
    assert names["spanguard_openai"] == "spanguard.instrumentation.openai:OpenAIInstrumentor"
    assert names["spanguard_anthropic"] == "spanguard.instrumentation.anthropic:AnthropicInstrumentor"


def test_an_entry_point_of_another_distribution_is_instrumented_and_a_third_partys_is_not(plugin, instrument, caplog):
    caplog.set_level(logging.DEBUG, logger="spanguard")
    names = [entry_point.name for entry_point in _instrument.spanguard_entry_points()]
    assert "spanguard_fakelib" in names and "fakelib" not in names
    instrument()
    import fakelib

    assert fakelib.Client().generate("x") == "instrumented: answer to x"
    # the third party's instrumentor is neither imported nor activated: opentelemetry-instrument's business
    assert "third_party_fakelib" not in sys.modules
    # the one whose library is missing is skipped quietly
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    spanguard.uninstrument()
    assert fakelib.Client().generate("x") == "answer to x"


def test_a_spanguard_entry_point_that_is_no_spanguard_instrumentor_is_refused_with_a_warning(
    tmp_path, monkeypatch, instrument, caplog
):
    broken = "[opentelemetry_instrumentor]\nspanguard_odd = fakelib_instrumentor:NotSpanguard\n"
    broken += "spanguard_gone = no_such_module_anywhere:Instrumentor\n"
    monkeypatch.syspath_prepend(str(install(tmp_path, broken)))
    caplog.set_level(logging.WARNING, logger="spanguard")
    instrument()
    messages = [r.getMessage() for r in caplog.records]
    assert any("spanguard_odd" in m and "not a SpanguardInstrumentor" in m for m in messages)
    assert any("spanguard_gone" in m and "cannot load" in m for m in messages)
    assert spanguard.is_instrumented()  # openai and anthropic still are
    sys.modules.pop("fakelib_instrumentor", None)


def test_instrument_imports_no_server_and_no_sdk_library_that_is_not_installed(tmp_path):
    """In a fresh interpreter: instrument() loads no collector or review module, and an instrumentor whose library
    is missing leaves that library unimported."""
    install(tmp_path)
    code = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        from opentelemetry.sdk.trace import TracerProvider
        import spanguard
        spanguard.instrument(tracer_provider=TracerProvider())
        servers = sorted(
            m for m in sys.modules
            if m.startswith(("spanguard.collector", "spanguard.review", "fastapi", "uvicorn", "sqlalchemy"))
        )
        print(servers, "no_such_library_here" in sys.modules, "fakelib" in sys.modules, spanguard.is_instrumented())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "False", "True", "True"]


def test_the_options_of_instrumentors_opentelemetry_instrument_started_are_found(telemetry):
    """``opentelemetry-instrument`` instantiates the instrumentors itself; their options are the ones in effect."""
    from spanguard.instrumentation.openai import OpenAIInstrumentor

    assert _instrument.current_options() is None
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, capture_content=True, redact=False)
    try:
        options = _instrument.current_options()
        assert options is not None and options.capture.enabled and not options.redact
    finally:
        instrumentor.uninstrument()
    assert _instrument.current_options() is None
