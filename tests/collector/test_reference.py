"""The generated component tables of docs/collector-config.md: meanings as sentences, readable defaults, blocks kept
in step with the registered factories (``make test`` runs ``--check`` on the real page)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from spanguard.collector.component import Factory
from spanguard.collector.confignet import TlsClientConfig
from spanguard.collector.reference import main, render_block, update
from spanguard.durations import Duration


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    depth: int = 2
    """how deep | it goes"""


class DemoConfig(BaseModel):
    """``processors.demo``: a model for the generator."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    wait: Duration = 1.5
    """seconds to wait"""
    flags: tuple[str, ...] = ("a", "b", "c", "d", "e", "f")
    enabled: bool = True
    note: str | None = Field(None, description="Optional note.")
    tls: TlsClientConfig = TlsClientConfig()
    inner: Inner = Inner()


DEMO = Factory("processor", "demo", DemoConfig)


def rows(block: str) -> dict[str, tuple[str, str]]:
    found = {}
    for line in block.splitlines():
        if line.startswith("| `"):
            key, default, meaning = (cell.strip() for cell in line.strip("|").split(" | "))
            found[key.strip("`")] = (default, meaning)
    return found


def test_a_block_has_readable_defaults_and_whole_sentences():
    block = render_block(DEMO)
    assert block.startswith("<!-- generated: processor demo -->\n`processors.demo`: a model for the generator.\n")
    table = rows(block)
    assert table["name"] == ("required", "")
    assert table["wait"] == ("`1.5s`", "Seconds to wait.")
    assert table["flags"][0] == "`a`, `b`, `c`, `d`, ... (6 in all)"
    assert table["enabled"][0] == "`true`"
    assert table["note"] == ("not set", "Optional note.")
    assert table["tls"][0] == "see its keys"
    assert "tls.ca_file" in table  # the collector's network settings are expanded
    assert "inner.depth" not in table  # a model of the component's own is one value
    assert table["inner"][1] == ""


def test_update_regenerates_adds_and_removes_blocks(tmp_path):
    page = "# Page\n\n## Components\n\n<!-- generated: processor gone -->\nold\n<!-- end generated -->\n\n## After\n"
    updated = update(page, [DEMO])
    assert "processor gone" not in updated
    assert "### processor `demo`\n\n<!-- generated: processor demo -->" in updated
    assert updated.index("processor demo") < updated.index("## After")
    assert update(updated, [DEMO]) == updated
    stale = updated.replace("`1.5s`", "`2s`")
    assert update(stale, [DEMO]) == updated


def test_the_real_page_is_checked(tmp_path, capsys):
    path = tmp_path / "page.md"
    path.write_text("# Page\n\n## Components\n")
    assert main(["--check", str(path)]) == 1
    assert "is stale" in capsys.readouterr().err
    assert main([str(path)]) == 0
    assert main(["--check", str(path)]) == 0
