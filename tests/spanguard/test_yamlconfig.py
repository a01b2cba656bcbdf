"""The one config loader: YAML positions kept, duplicate keys refused, ``${env:VAR}`` expanded, a pydantic model
validating, and every problem raised at once as ``file:line:column: path: what is wrong``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from spanguard.yamlconfig import (
    ConfigError,
    Problem,
    format_path,
    load_data,
    load_file,
    load_text,
    relative_to_config,
)


class Endpoint(BaseModel, frozen=True, extra="forbid"):
    host: str
    port: int = Field(4317, ge=1, le=65535)
    secure: bool = False


class Included(BaseModel, frozen=True, extra="forbid"):
    name: str


class Settings(BaseModel, frozen=True, extra="forbid"):
    service: str = "app"
    endpoints: list[Endpoint] = []
    labels: dict[str, str] = {}
    include: str | None = None

    @field_validator("include")
    @classmethod
    def _loads(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            load_file(relative_to_config(value, info.context), Included)  # a ConfigError is a ValueError
        return value


def refused(text: str, environ: dict[str, str] | None = None, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_text(text, Settings, source="s.yaml", environ=environ or {}, **kwargs)
    return caught.value


def test_a_valid_document_is_validated_by_the_model() -> None:
    text = "service: shop\nendpoints:\n  - {host: a, port: 1}\n  - host: b\nlabels: {team: pay}\n"
    settings = load_text(text, Settings, environ={})
    assert settings.endpoints == [Endpoint(host="a", port=1), Endpoint(host="b")]
    assert settings.labels == {"team": "pay"}


def test_an_empty_document_is_every_default() -> None:
    assert load_text("", Settings) == Settings()
    assert load_text("# nothing\n", Settings) == Settings()


def test_each_problem_has_the_file_line_and_column_of_its_key() -> None:
    error = refused("service: shop\nendpoints:\n  - host: a\n    port: 0\n")
    (problem,) = error.problems
    assert (problem.source, problem.line, problem.column, problem.path) == ("s.yaml", 4, 5, "endpoints[0].port")
    assert str(error) == "s.yaml:4:5: endpoints[0].port: Input should be greater than or equal to 1 (got 0)"


def test_a_missing_key_is_reported_at_the_line_of_the_mapping_that_lacks_it() -> None:
    (problem,) = refused("endpoints:\n  - port: 1\n").problems
    assert (problem.path, problem.line, problem.message) == ("endpoints[0].host", 2, "required, but missing")


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    error = refused("endpoints:\n  - {host: a, port: x}\n  - {host: 1}\nservice: [a]\n")
    assert [(p.line, p.path) for p in error.problems] == [
        (2, "endpoints[0].port"),
        (3, "endpoints[1].host"),
        (4, "service"),
    ]
    assert str(error).count("\n") == 2  # one line per problem
    assert error.errors == [(p.path, p.message) for p in error.problems]


def test_an_unknown_key_is_refused_with_the_keys_the_model_takes() -> None:
    (problem,) = refused("endpoints:\n  - {host: a, prot: 1}\n").problems
    assert (problem.path, problem.line, problem.column) == ("endpoints[0].prot", 2, 15)
    assert problem.message == "unknown key 'prot'; known keys: host, port, secure"


def test_a_key_holding_a_dot_is_quoted_in_the_path() -> None:
    (problem,) = refused("labels: {gen_ai.system: 3}\n").problems
    assert problem.path == 'labels["gen_ai.system"]'
    assert format_path(("a", 'we"ird', 0, "b c")) == 'a["we\\"ird"][0].b c'


def test_duplicate_keys_are_refused_with_both_positions() -> None:
    error = refused("service: a\nendpoints:\n  - host: x\n    host: y\nservice: b\n")
    assert [(p.path, p.line, p.column) for p in error.problems] == [
        ("endpoints[0].host", 4, 5),
        ("service", 5, 1),
    ]
    assert (
        error.problems[0].message == "duplicate key 'host' (first defined at line 3, column 5); the second is not used"
    )
    assert "(first defined at line 1, column 1)" in error.problems[1].message


def test_environment_references_are_expanded_in_string_values() -> None:
    text = "service: ${env:SERVICE}-${SUFFIX}\nendpoints: [{host: '${env:HOST:-localhost}', port: '${env:PORT}'}]\n"
    settings = load_text(text, Settings, environ={"SERVICE": "shop", "SUFFIX": "eu", "PORT": "4318"})
    assert settings.service == "shop-eu"
    assert settings.endpoints[0].host == "localhost"  # the default, as the variable is unset
    assert settings.endpoints[0].port == 4318  # the setting's type decides: an int from the variable's text
    assert load_text("service: cost $$5 and $6\n", Settings, environ={}).service == "cost $5 and $6"


def test_a_missing_environment_variable_is_refused_naming_it_and_the_path() -> None:
    (problem,) = refused("endpoints:\n  - host: ${env:COLLECTOR_HOST}\n").problems
    assert (problem.path, problem.line) == ("endpoints[0].host", 2)
    assert problem.message.startswith("environment variable COLLECTOR_HOST is not set")


def test_a_value_from_the_environment_is_never_echoed_in_a_message() -> None:
    (problem,) = refused("endpoints:\n  - {host: a, port: '${env:PORT}'}\n", {"PORT": "s3cr3t"}).problems
    assert problem.path == "endpoints[0].port"
    assert "s3cr3t" not in str(problem)


def test_an_unsupported_provider_and_a_malformed_reference_are_refused() -> None:
    error = refused("service: ${file:/etc/passwd}\nendpoints: [{host: '${env:X'}]\n")
    assert "unsupported config provider 'file'" in error.problems[0].message
    assert "unterminated reference" in error.problems[1].message


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "a list"), ("just text\n", "a string"), ("3\n", "a number")])
def test_a_top_level_that_is_not_a_mapping_is_refused(text: str, kind: str) -> None:
    error = refused(text)
    assert str(error) == f"s.yaml:1:1: the top level must be a mapping, not {kind}"


def test_invalid_yaml_is_refused_with_the_position_of_the_error() -> None:
    (problem,) = refused("service: a\nendpoints: [{host: a}\n").problems
    assert (problem.line, problem.column, problem.path) == (3, 1, "")
    assert problem.message.startswith("YAML syntax error: expected ',' or ']'")
    assert "that starts at line 2, column 12" in problem.message


def test_tags_beyond_the_core_schema_and_several_documents_are_refused() -> None:
    assert "unsupported YAML tag" in str(refused("service: !!python/object:os.system x\n"))
    assert "only one YAML document" in str(refused("service: a\n---\nservice: b\n"))


def test_yaml_1_2_core_scalars_yes_and_no_stay_strings() -> None:
    assert load_text("service: no\n", Settings).service == "no"
    error = refused("service: true\n")
    assert error.problems[0].message.startswith("Input should be a valid string")


def test_a_file_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(b"service: a\nlabels: {x: caf\xe9}\n")
    with pytest.raises(ConfigError) as caught:
        load_file(path, Settings)
    (problem,) = caught.value.problems
    assert (problem.source, problem.line) == (str(path), 2)
    assert str(problem) == f"{path}:2: the file is not valid UTF-8 (byte 26)"


def test_a_file_that_does_not_exist_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_file(tmp_path / "missing.yaml", Settings, what="settings file")
    assert str(caught.value) == f"{tmp_path / 'missing.yaml'}: cannot read the settings file: No such file or directory"


def test_a_file_named_inside_a_config_is_found_next_to_it_and_its_problems_keep_their_own_positions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "settings.yaml").write_text("service: a\ninclude: part.yaml\n")
    (tmp_path / "conf" / "part.yaml").write_text("name: x\n")
    monkeypatch.chdir(tmp_path)
    assert load_file(Path("conf/settings.yaml"), Settings).include == "part.yaml"
    (tmp_path / "conf" / "part.yaml").write_text("\nnmae: x\n")
    with pytest.raises(ConfigError) as caught:
        load_file(Path("conf/settings.yaml"), Settings)
    assert [str(p) for p in caught.value.problems] == [
        f"{(tmp_path / 'conf' / 'part.yaml').resolve()}:2:1: name: required, but missing",
        f"{(tmp_path / 'conf' / 'part.yaml').resolve()}:2:1: nmae: unknown key 'nmae'; known keys: name",
    ]


def test_a_mapping_from_no_file_is_refused_with_paths_under_its_place() -> None:
    with pytest.raises(ConfigError) as caught:
        load_data({"endpoints": [{"host": "a", "port": -1}]}, Settings, base=("processors", "x"))
    assert str(caught.value).startswith("processors.x.endpoints[0].port: Input should be greater than or equal to 1")
    assert caught.value.source is None


def test_a_config_s_label_and_checks_are_used() -> None:
    def distinct_hosts(settings: Settings) -> list[tuple[tuple[str | int, ...], str]]:
        hosts = [endpoint.host for endpoint in settings.endpoints]
        return [(("endpoints", 1, "host"), "host listed twice")] if len(set(hosts)) < len(hosts) else []

    text = "endpoints:\n  - host: a\n  - host: a\n"
    with pytest.raises(ConfigError) as caught:
        load_text(text, Settings, source="s.yaml", label="settings", check=distinct_hosts)
    assert (
        str(caught.value) == "s.yaml: invalid settings (1 problem):\n  s.yaml:3:5: endpoints[1].host: host listed twice"
    )
    assert type(caught.value) is ConfigError and caught.value.label == "settings"
    assert isinstance(caught.value, ValueError)


def test_an_error_made_from_a_message_alone_reads_as_that_message() -> None:
    error = ConfigError("something is wrong")
    assert str(error) == "something is wrong" and error.problems == (Problem("", "something is wrong", None),)
