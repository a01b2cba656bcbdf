"""docs/contributing.md's worked example of an instrumented library, run as written: its module and its
``pyproject.toml`` line (as an installed distribution's entry point) give a chat span through ``instrument()``."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from contributing_examples import add_to_package, example_modules, section

import spanguard
import spanguard.instrumentation

ACME_LLM = """
from types import SimpleNamespace


def _answer(model, prompt, max_tokens=16):
    usage = SimpleNamespace(input_tokens=len(prompt.split()), output_tokens=2)
    return SimpleNamespace(id="cmpl-1", model=model, text="Hello there", finish_reason="stop", usage=usage)


class Client:
    def complete(self, *, model, prompt, max_tokens=16):
        return _answer(model, prompt, max_tokens)


class AsyncClient:
    async def complete(self, *, model, prompt, max_tokens=16):
        return _answer(model, prompt, max_tokens)
"""


def example() -> tuple[dict[str, str], str]:
    """The example's module and its entry point line, from docs/contributing.md."""
    modules = example_modules("An instrumented library", "instrumentation")
    line = re.search(
        r'```toml\n\[project\.entry-points\.opentelemetry_instrumentor\]\n.*?^spanguard_acme = "(.*?)"$',
        section("An instrumented library"),
        re.S | re.M,
    )
    assert set(modules) == {"acme.py"} and line is not None
    return modules, f"spanguard_acme = {line.group(1)}"


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example's module in spanguard.instrumentation, its entry point and a fake acme_llm on the path."""
    modules, entry_point = example()
    add_to_package(spanguard.instrumentation, modules, tmp_path / "instrumentation", monkeypatch)
    (tmp_path / "acme_llm").mkdir()
    (tmp_path / "acme_llm" / "__init__.py").write_text("")
    (tmp_path / "acme_llm" / "client.py").write_text(ACME_LLM)
    for name, extra in (("acme_llm", ""), ("spanguard_acme", f"[opentelemetry_instrumentor]\n{entry_point}\n")):
        info = tmp_path / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 1.0\n")
        if extra:
            (info / "entry_points.txt").write_text(extra)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    spanguard.uninstrument()
    for name in ("spanguard.instrumentation.acme", "acme_llm.client", "acme_llm"):
        sys.modules.pop(name, None)


async def test_the_worked_example_instruments_its_library_from_its_entry_point(installed, instrument) -> None:
    telemetry = instrument(capture_content=True, redact=False)
    from acme_llm.client import AsyncClient, Client

    assert Client().complete(model="acme-1-2025-01-01", prompt="say hello", max_tokens=8).text == "Hello there"
    assert (await AsyncClient().complete(model="acme-1-2025-01-01", prompt="again")).text == "Hello there"
    sync, async_ = telemetry.spans()
    assert sync.name == async_.name == "chat acme-1-2025-01-01"
    attributes = dict(sync.attributes or {})
    assert attributes["gen_ai.provider.name"] == "acme" and attributes["gen_ai.request.max_tokens"] == 8
    assert attributes["gen_ai.response.id"] == "cmpl-1" and attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (2, 2)
    output = json.loads(str(attributes["gen_ai.output.messages"]))
    assert output == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Hello there"}], "finish_reason": "stop"}
    ]
    spanguard.uninstrument()
    Client().complete(model="acme-1", prompt="x")
    assert len(telemetry.spans()) == 2
