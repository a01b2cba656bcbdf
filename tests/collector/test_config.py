"""The collector's config loader: the OTel Collector's shape, every refusal naming its YAML path (and line)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from spanguard.collector import config as cfg
from spanguard.collector.config import (
    CollectorConfig,
    Duration,
    Endpoint,
    Factory,
    Registry,
    load_config,
    load_config_text,
    main_validate,
    parse_duration,
)
from spanguard.yamlconfig import ConfigError, Problem

# --------------------------------------------------------------------------------------------------------------------
# Dummy factories: small models with a Duration and nested models, standing in for the real components


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Protocol(_Model):
    endpoint: Endpoint
    max_recv_msg_size_mib: int = 64


class Protocols(_Model):
    grpc: Protocol | None = None
    http: Protocol | None = None


class ReceiverConfig(_Model):
    protocols: Protocols


class RedactionConfig(_Model):
    entities: list[str] = ["EMAIL_ADDRESS"]


class RiskConfig(_Model):
    rules_file: str | None = None
    rules_path: Path | None = None

    @field_validator("rules_path", mode="after")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base = (info.context or {}).get("config_dir")
        return base / value if value is not None and base is not None else value


class SamplingConfig(_Model):
    decision_wait: Annotated[Duration, Field(gt=0)] = 30.0
    yellow_rate: float = Field(0.25, ge=0, le=1, strict=True)


class BatchConfig(_Model):
    timeout: Duration = 0.2
    send_batch_size: int = Field(8192, gt=0)


class Tls(_Model):
    insecure: bool = False
    ca_file: str | None = None


class OtlpExporterConfig(_Model):
    endpoint: Endpoint
    timeout: Duration = 10.0
    tls: Tls = Tls()
    headers: dict[str, str] = {}
    token: str | None = None
    retries: int = Field(3, ge=0, strict=True)


class FileExporterConfig(_Model):
    path: str


class DebugExporterConfig(_Model):
    verbosity: str = "basic"


class HealthCheckConfig(_Model):
    endpoint: Endpoint = "127.0.0.1:13133"


ALL_SIGNALS = ("traces", "logs", "metrics")


def _registry() -> Registry:
    registry = Registry()
    for factory in (
        Factory("receiver", "otlp", ReceiverConfig, signals=ALL_SIGNALS),
        Factory("processor", "redaction", RedactionConfig),
        Factory("processor", "risk", RiskConfig),
        Factory("processor", "tail_sampling", SamplingConfig),
        Factory("processor", "batch", BatchConfig, signals=ALL_SIGNALS),
        Factory("exporter", "otlp", OtlpExporterConfig, signals=ALL_SIGNALS),
        Factory("exporter", "file", FileExporterConfig, signals=ALL_SIGNALS),
        Factory("exporter", "debug", DebugExporterConfig, signals=ALL_SIGNALS),
        Factory("exporter", "review", DebugExporterConfig),  # traces only
        Factory("extension", "health_check", HealthCheckConfig),
    ):
        registry.register(factory)
    return registry


REGISTRY = _registry()

FULL = """\
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:4317}
      http: {endpoint: 127.0.0.1:4318}
processors:
  redaction: {entities: [EMAIL_ADDRESS, PHONE_NUMBER]}
  risk: {rules_file: risk.yaml}
  tail_sampling: {decision_wait: 10s}
  batch: {}
exporters:
  otlp/phoenix: {endpoint: 127.0.0.1:4317, tls: {insecure: true}}
  file: {path: out.jsonl}
  debug: {}
extensions:
  health_check: {endpoint: 127.0.0.1:13133}
service:
  extensions: [health_check]
  telemetry: {metrics: {address: 127.0.0.1:8888}, logs: {level: info}}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [redaction, risk, tail_sampling, batch]
      exporters: [otlp/phoenix, file, debug]
"""

MINIMAL_TAIL = """\
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
"""


def load(text: str, environ: dict[str, str] | None = None, **kwargs: Any) -> CollectorConfig:
    kwargs.setdefault("registry", REGISTRY)
    return load_config_text(textwrap.dedent(text), environ=environ or {}, **kwargs)


def minimal(extra: str = "", tail: str = MINIMAL_TAIL) -> str:
    """A valid config (one receiver, one exporter) with ``extra`` YAML before ``service``."""
    return "receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:4317}}}}\n" + extra + tail


def refused(text: str, environ: dict[str, str] | None = None, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(text, environ, **kwargs)
    return caught.value


def issue_at(error: ConfigError, path: str) -> Problem:
    """The problem reported at ``path`` (exactly one)."""
    found = [issue for issue in error.problems if issue.path == path]
    assert len(found) == 1, f"no single issue at {path!r} in:\n{error}"
    return found[0]


# --------------------------------------------------------------------------------------------------------------------
# A valid config


def test_full_config_loads_into_typed_objects() -> None:
    config = load(FULL)
    assert list(config.receivers) == ["otlp"]
    receiver = config.receivers["otlp"]
    assert (receiver.id, receiver.type, receiver.name, receiver.kind) == ("otlp", "otlp", "", "receiver")
    assert isinstance(receiver.config, ReceiverConfig)
    assert receiver.config.protocols.grpc == Protocol(endpoint="127.0.0.1:4317")
    assert receiver.config.protocols.http is not None and receiver.config.protocols.http.endpoint == "127.0.0.1:4318"

    assert list(config.processors) == ["redaction", "risk", "tail_sampling", "batch"]
    assert config.processors["redaction"].config == RedactionConfig(entities=["EMAIL_ADDRESS", "PHONE_NUMBER"])
    sampling = config.processors["tail_sampling"].config
    assert isinstance(sampling, SamplingConfig) and sampling.decision_wait == 10.0
    assert config.processors["batch"].config == BatchConfig()
    assert config.processors["batch"].factory.config_class is BatchConfig

    phoenix = config.exporters["otlp/phoenix"]
    assert (phoenix.id, phoenix.type, phoenix.name) == ("otlp/phoenix", "otlp", "phoenix")
    assert isinstance(phoenix.config, OtlpExporterConfig)
    assert phoenix.config.tls.insecure is True and phoenix.config.timeout == 10.0
    assert config.exporters["file"].config == FileExporterConfig(path="out.jsonl")

    assert config.extensions["health_check"].config == HealthCheckConfig()
    assert config.service_extensions == ("health_check",)
    assert config.telemetry == cfg.TelemetryConfig(metrics_address="127.0.0.1:8888", logs_level="info")
    pipeline = config.pipelines["traces"]
    assert pipeline == cfg.PipelineConfig(
        "traces", ("otlp",), ("redaction", "risk", "tail_sampling", "batch"), ("otlp/phoenix", "file", "debug")
    )
    assert pipeline.type == "traces"
    assert config.warnings == ()
    assert config.components("exporter") is config.exporters


def test_null_component_settings_mean_defaults_and_optional_sections_may_be_empty() -> None:
    config = load(minimal("processors:\nexporters:\n  debug:\nextensions: {}\n"))
    assert config.exporters["debug"].config == DebugExporterConfig()
    assert config.processors == {} and config.extensions == {}
    assert config.telemetry == cfg.TelemetryConfig()  # defaults: metrics on 127.0.0.1:8888, logs info


def test_several_pipelines_with_type_name_ids() -> None:
    config = load(
        minimal(
            "exporters: {debug: {}, otlp/a.b-c_1: {endpoint: 'collector:4317'}}\n",
            tail="""\
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
    traces/review: {receivers: [otlp], processors: [], exporters: [otlp/a.b-c_1]}
""",
        )
    )
    assert list(config.pipelines) == ["traces", "traces/review"]
    assert config.pipelines["traces/review"].type == "traces"
    assert config.exporters["otlp/a.b-c_1"].name == "a.b-c_1"


def test_load_config_reads_a_file_and_passes_its_directory_to_component_models(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(minimal("processors: {risk: {rules_path: rules.yaml}}\nexporters: {debug: {}}\n"))
    config = load_config(path, environ={}, registry=REGISTRY)
    assert config.source == str(path) and config.config_dir == tmp_path.resolve()
    assert config.processors["risk"].config == RiskConfig(rules_path=tmp_path.resolve() / "rules.yaml")


def test_anchors_and_merge_keys() -> None:
    config = load(
        minimal("""\
exporters:
  debug: {}
  otlp/a: &defaults {endpoint: 'a:4317', timeout: 5s, tls: {insecure: true}}
  otlp/b:
    <<: *defaults
    endpoint: 'b:4317'
""")
    )
    assert config.exporters["otlp/b"].config == OtlpExporterConfig(
        endpoint="b:4317", timeout=5.0, tls=Tls(insecure=True)
    )


def test_yaml_1_2_scalars_no_means_no_and_only_true_false_are_booleans() -> None:
    config = load(minimal("exporters: {debug: {verbosity: no}, file: {path: on}}\n"))
    assert config.exporters["debug"].config == DebugExporterConfig(verbosity="no")
    assert config.exporters["file"].config == FileExporterConfig(path="on")


# --------------------------------------------------------------------------------------------------------------------
# Refusals, each naming its path


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("receivers:\n  otlp: {protocols: {grpc: {endpoint: 127.0.0.1:4317}}\nservice: [\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={}, registry=REGISTRY)
    (issue,) = caught.value.problems
    assert issue.message.startswith("YAML syntax error")
    assert issue.line is not None and issue.line >= 2
    assert f"{path}:{issue.line}:{issue.column}: YAML syntax error" in str(caught.value)


def test_tab_indentation_is_a_syntax_error_with_position() -> None:
    error = refused("receivers:\n\totlp: {}\n")
    (issue,) = error.problems
    assert "YAML syntax error" in issue.message and issue.line == 2


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "~\n", "---\n"])
def test_empty_config_is_refused(text: str) -> None:
    error = refused(text)
    assert "empty" in str(error)


def test_several_documents_are_refused() -> None:
    error = refused(minimal("exporters: {debug: {}}\n") + "---\nreceivers: {}\n")
    assert "one YAML document" in str(error) and error.problems[0].line == 7  # where the second starts


def test_top_level_must_be_a_mapping() -> None:
    error = refused("- receivers\n- exporters\n")
    assert "top level must be a mapping" in str(error)


def test_unknown_top_level_key_names_it_and_the_known_ones() -> None:
    error = refused(minimal("exporters: {debug: {}}\nrecievers: {}\n"))
    issue = issue_at(error, "recievers")
    assert "unknown key 'recievers'" in issue.message and "receivers, processors, exporters" in issue.message
    assert issue.line == 3 and issue.column == 1
    assert "<string>:3:1: recievers: unknown key" in str(error)


def test_connectors_are_refused_clearly() -> None:
    error = refused(minimal("exporters: {debug: {}}\nconnectors: {forward: {}}\n"))
    assert "connectors are not supported" in issue_at(error, "connectors").message


def test_unknown_component_type_lists_known_types() -> None:
    error = refused(minimal("exporters: {debug: {}, otlpx/phoenix: {endpoint: 'x:1'}}\n"))
    issue = issue_at(error, "exporters.otlpx/phoenix")
    assert "unknown exporter type 'otlpx'" in issue.message
    assert "known exporter types: debug, file, otlp" in issue.message
    assert issue.line == 2


@pytest.mark.parametrize("bad_id", ["otlp/", "1otlp", "otlp/a/b", "otlp/a b", "ot-lp", "/name", "otlp/é"])
def test_bad_component_id_syntax_is_refused(bad_id: str) -> None:
    error = refused(minimal(f"exporters: {{debug: {{}}, '{bad_id}': {{}}}}\n"))
    issue = issue_at(error, f"exporters.{bad_id}")
    assert "invalid id" in issue.message and "'type/name'" in issue.message


@pytest.mark.parametrize("good_id", ["otlp", "otlp/phoenix", "otlp/a.b-c_1", "otlp/2", "otlp/UPPER"])
def test_component_id_syntax(good_id: str) -> None:
    type_, _, name = good_id.partition("/")
    assert cfg.parse_component_id(good_id) == (type_, name)


def test_component_section_must_be_a_mapping() -> None:
    error = refused(minimal("exporters: [debug]\n"))
    assert "must be a mapping of exporter id to settings" in issue_at(error, "exporters").message


def test_component_settings_must_be_a_mapping() -> None:
    error = refused(minimal("exporters: {debug: verbose}\n"))
    assert "settings must be a mapping" in issue_at(error, "exporters.debug").message


def test_unknown_key_inside_a_component_names_the_nested_path_and_known_keys(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(
        minimal("""\
exporters:
  debug: {}
  otlp/phoenix:
    endpoint: 127.0.0.1:4317
    tls:
      insecure: true
      verify: false
""")
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={}, registry=REGISTRY)
    issue = issue_at(caught.value, "exporters.otlp/phoenix.tls.verify")
    assert issue.message == "unknown key 'verify'; known keys: insecure, ca_file"
    assert (issue.line, issue.column) == (8, 7)
    assert f"{path}:8:7: exporters.otlp/phoenix.tls.verify: unknown key 'verify'" in str(caught.value)


def test_wrong_type_inside_a_component_names_the_path_and_line() -> None:
    error = refused(
        minimal("""\
exporters:
  debug: {}
  otlp/phoenix:
    endpoint: 127.0.0.1:4317
    tls: {insecure: maybe}
""")
    )
    issue = issue_at(error, "exporters.otlp/phoenix.tls.insecure")
    assert "valid boolean" in issue.message and "'maybe'" in issue.message
    assert issue.line == 6


def test_bad_values_in_lists_and_maps_name_the_index_or_key() -> None:
    error = refused(
        minimal("""\
processors: {redaction: {entities: [EMAIL_ADDRESS, [nested]]}}
exporters:
  debug: {}
  otlp: {endpoint: 'x:1', headers: {authorization: {bad: map}}}
""")
    )
    assert "valid string" in issue_at(error, "processors.redaction.entities[1]").message
    assert issue_at(error, "processors.redaction.entities[1]").line == 2
    assert "valid string" in issue_at(error, "exporters.otlp.headers.authorization").message


def test_missing_required_setting_names_it() -> None:
    error = refused(minimal("exporters: {debug: {}, file: {}}\n"))
    issue = issue_at(error, "exporters.file.path")
    assert issue.message == "required, but missing" and issue.line == 2  # the component's line


def test_bad_value_from_a_validator() -> None:
    error = refused(minimal("exporters: {debug: {}, otlp: {endpoint: localhost}}\n"))
    assert "invalid endpoint 'localhost'" in issue_at(error, "exporters.otlp.endpoint").message
    error = refused(minimal("processors: {batch: {send_batch_size: 0}}\nexporters: {debug: {}}\n"))
    assert "greater than 0" in issue_at(error, "processors.batch.send_batch_size").message


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    error = refused("""\
        receivers: {otlp: {protocols: {grpc: {endpoint: nope}}}}
        processors: {batch: {timeout: 10 parsecs}, sampler: {}}
        exporters: {debug: {colour: red}}
        bogus: 1
        service:
          pipelines:
            traces: {receivers: [otlp], exporters: [debug, missing]}
        """)
    assert [issue.path for issue in error.problems] == [
        "receivers.otlp.protocols.grpc.endpoint",
        "processors.batch.timeout",
        "processors.sampler",
        "exporters.debug.colour",
        "bogus",
        "service.pipelines.traces.exporters[1]",
    ]
    assert [issue.line for issue in error.problems] == [1, 2, 2, 3, 4, 7]
    assert error.errors == [(issue.path, issue.message) for issue in error.problems]
    assert str(error).startswith("<string>: invalid collector config (6 problems):\n  <string>:1:")


def test_duplicate_yaml_keys_are_refused_with_both_lines() -> None:
    error = refused("""\
        receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:4317}}}}
        exporters:
          debug: {}
          otlp:
            endpoint: a:1
            endpoint: b:2
        exporters: {file: {path: x}}
        service: {pipelines: {traces: {receivers: [otlp], exporters: [debug, otlp]}}}
        """)
    nested = issue_at(error, "exporters.otlp.endpoint")
    assert "duplicate key 'endpoint' (first defined at line 5, column 5)" in nested.message and nested.line == 6
    top = issue_at(error, "exporters")
    assert "duplicate key 'exporters' (first defined at line 2, column 1)" in top.message and top.line == 7


def test_service_is_required() -> None:
    error = refused("receivers: {otlp: {protocols: {}}}\nexporters: {debug: {}}\n")
    assert "required" in issue_at(error, "service").message


@pytest.mark.parametrize("pipelines", ["", "pipelines:", "pipelines: {}"])
def test_at_least_one_pipeline_is_required(pipelines: str) -> None:
    error = refused(minimal("exporters: {debug: {}}\n", tail=f"service:\n  {pipelines}\n"))
    assert "at least one pipeline" in issue_at(error, "service.pipelines").message


def test_unknown_service_key() -> None:
    error = refused(minimal("exporters: {debug: {}}\n", tail=MINIMAL_TAIL + "  connectors: []\n"))
    assert "unknown key 'connectors'" in issue_at(error, "service.connectors").message


def test_pipeline_naming_an_undefined_component_names_the_list_entry() -> None:
    error = refused(
        minimal(
            "processors: {batch: {}}\nexporters: {debug: {}}\n",
            tail="""\
service:
  pipelines:
    traces:
      receivers: [otlp, otlp/2]
      processors: [batch, risk]
      exporters: [debug, otlp/phoenix]
""",
        )
    )
    receiver = issue_at(error, "service.pipelines.traces.receivers[1]")
    assert receiver.message == "receiver 'otlp/2' is not defined under receivers (defined: otlp)"
    assert receiver.line == 7
    assert "processor 'risk' is not defined" in issue_at(error, "service.pipelines.traces.processors[1]").message
    exporter = issue_at(error, "service.pipelines.traces.exporters[1]")
    assert "exporter 'otlp/phoenix' is not defined under exporters (defined: debug)" == exporter.message


def test_a_component_of_another_kind_is_not_found() -> None:
    error = refused(minimal("exporters: {debug: {}}\n", tail=MINIMAL_TAIL.replace("[otlp]", "[debug]")))
    assert "receiver 'debug' is not defined" in issue_at(error, "service.pipelines.traces.receivers[0]").message


def test_a_component_listed_twice_in_a_pipeline_is_refused() -> None:
    error = refused(minimal("exporters: {debug: {}}\n", tail=MINIMAL_TAIL.replace("[debug]", "[debug, debug]")))
    assert "listed more than once" in issue_at(error, "service.pipelines.traces.exporters[1]").message


@pytest.mark.parametrize(
    ("pipeline", "path", "message"),
    [
        ("{receivers: [], exporters: [debug]}", "service.pipelines.traces.receivers", "at least one receiver"),
        ("{exporters: [debug]}", "service.pipelines.traces.receivers", "at least one receiver"),
        ("{receivers: [otlp]}", "service.pipelines.traces.exporters", "at least one exporter"),
        ("{receivers: [otlp], exporters: }", "service.pipelines.traces.exporters", "at least one exporter"),
        ("{receivers: otlp, exporters: [debug]}", "service.pipelines.traces.receivers", "valid list"),
        ("{receivers: [otlp], exporters: [debug], connectors: []}", "service.pipelines.traces.connectors", "unknown"),
    ],
)
def test_pipeline_shape_is_checked(pipeline: str, path: str, message: str) -> None:
    error = refused(minimal("exporters: {debug: {}}\n", tail=f"service:\n  pipelines:\n    traces: {pipeline}\n"))
    assert message in issue_at(error, path).message
    assert issue_at(error, path).line is not None


@pytest.mark.parametrize("signal", ["logs", "metrics", "logs/app"])
def test_logs_and_metrics_pipelines_load_with_the_signal_as_their_type(signal: str) -> None:
    tail = MINIMAL_TAIL + f"    {signal}: {{receivers: [otlp], processors: [batch], exporters: [debug]}}\n"
    config = load(minimal("processors: {batch: {}}\nexporters: {debug: {}}\n", tail=tail))
    assert config.pipelines[signal].type == signal.split("/")[0]


@pytest.mark.parametrize(("processor", "signal"), [("risk", "logs"), ("tail_sampling", "metrics")])
def test_a_processor_that_does_not_handle_a_pipelines_signal_is_refused(processor: str, signal: str) -> None:
    tail = MINIMAL_TAIL + f"    {signal}: {{receivers: [otlp], processors: [{processor}], exporters: [debug]}}\n"
    error = refused(minimal(f"processors: {{{processor}: {{}}}}\nexporters: {{debug: {{}}}}\n", tail=tail))
    issue = issue_at(error, f"service.pipelines.{signal}.processors[0]")
    assert f"cannot be in a {signal} pipeline" in issue.message and "handles traces" in issue.message


def test_the_review_exporter_is_refused_in_a_logs_pipeline() -> None:
    tail = MINIMAL_TAIL + "    logs: {receivers: [otlp], exporters: [review]}\n"
    error = refused(minimal("exporters: {debug: {}, review: {}}\n", tail=tail))
    assert "cannot be in a logs pipeline" in issue_at(error, "service.pipelines.logs.exporters[0]").message


def test_workers_are_refused_on_a_logs_pipeline() -> None:
    tail = MINIMAL_TAIL + "    logs: {receivers: [otlp], exporters: [debug], workers: 2}\n"
    error = refused(minimal("exporters: {debug: {}}\n", tail=tail))
    assert "workers applies to traces pipelines" in issue_at(error, "service.pipelines.logs.workers").message


def test_profiles_pipelines_are_not_supported() -> None:
    tail = MINIMAL_TAIL + "    profiles: {receivers: [otlp], exporters: [debug]}\n"
    error = refused(minimal("exporters: {debug: {}}\n", tail=tail))
    assert "profiles pipelines are not supported" in issue_at(error, "service.pipelines.profiles").message


@pytest.mark.parametrize(
    ("pipeline_id", "message"), [("spans", "unknown pipeline type 'spans'"), ("traces/", "invalid")]
)
def test_unknown_or_malformed_pipeline_ids(pipeline_id: str, message: str) -> None:
    tail = f"service:\n  pipelines:\n    '{pipeline_id}': {{receivers: [otlp], exporters: [debug]}}\n"
    error = refused(minimal("exporters: {debug: {}}\n", tail=tail))
    assert message in issue_at(error, f"service.pipelines.{pipeline_id}").message


def test_service_extensions_must_be_defined() -> None:
    tail = "service:\n  extensions: [health_check, zpages]\n" + MINIMAL_TAIL.removeprefix("service:\n")
    error = refused(minimal("exporters: {debug: {}}\nextensions: {health_check: {}}\n", tail=tail))
    issue = issue_at(error, "service.extensions[1]")
    assert issue.message == "extension 'zpages' is not defined under extensions (defined: health_check)"


def test_telemetry_settings() -> None:
    def telemetry(text: str) -> cfg.TelemetryConfig:
        tail = f"service:\n  telemetry: {text}\n" + MINIMAL_TAIL.removeprefix("service:\n")
        return load(minimal("exporters: {debug: {}}\n", tail=tail)).telemetry

    assert telemetry("{metrics: {address: null}}").metrics_address is None
    assert telemetry("{metrics: {address: ''}}").metrics_address is None
    assert telemetry("{metrics: {level: none}}").metrics_address is None
    assert telemetry("{metrics: {address: '0.0.0.0:9999'}}").metrics_address == "0.0.0.0:9999"
    assert telemetry("{logs: {level: DEBUG, encoding: json}}") == cfg.TelemetryConfig(
        logs_level="debug", logs_encoding="json"
    )
    assert telemetry("") == cfg.TelemetryConfig()

    tail = "service:\n  telemetry: {logs: {level: loud}, metrics: {address: 8888}}\n" + MINIMAL_TAIL.removeprefix(
        "service:\n"
    )
    error = refused(minimal("exporters: {debug: {}}\n", tail=tail))
    assert "'debug', 'info', 'warn' or 'error'" in issue_at(error, "service.telemetry.logs.level").message
    assert "valid string" in issue_at(error, "service.telemetry.metrics.address").message


# --------------------------------------------------------------------------------------------------------------------
# Unused components: warnings, not errors


def test_unused_components_are_warnings_not_errors() -> None:
    config = load(
        minimal("processors: {batch: {}}\nexporters: {debug: {}, file: {path: x}}\nextensions: {health_check: {}}\n")
    )
    assert [(w.path, w.severity) for w in config.warnings] == [
        ("processors.batch", "warning"),
        ("exporters.file", "warning"),
        ("extensions.health_check", "warning"),
    ]
    assert "processor 'batch' is defined but not used in any pipeline" in config.warnings[0].message
    assert "not used in service.extensions" in config.warnings[2].message
    assert str(config.warnings[1]) == (
        "<string>:3:24: warning: exporters.file: exporter 'file' is defined but not used in any pipeline; "
        "it will not be started"
    )


def test_unused_receiver_is_a_warning() -> None:
    config = load(minimal("exporters: {debug: {}}\n").replace("{otlp:", "{otlp/unused: {protocols: {}}, otlp:"))
    assert [w.path for w in config.warnings] == ["receivers.otlp/unused"]


# --------------------------------------------------------------------------------------------------------------------
# ${env:VAR} substitution


def test_env_references_are_expanded_in_string_values() -> None:
    config = load(
        minimal("""\
exporters:
  debug: {}
  otlp:
    endpoint: ${env:HOST}:${PORT}
    headers: {authorization: "Bearer ${env:TOKEN}", literal: "cost $$5 and $${env:HOST}", lone: "a $ b"}
"""),
        {"HOST": "phoenix", "PORT": "4317", "TOKEN": "s3cret"},
    )
    exporter = config.exporters["otlp"].config
    assert isinstance(exporter, OtlpExporterConfig)
    assert exporter.endpoint == "phoenix:4317"
    assert exporter.headers == {"authorization": "Bearer s3cret", "literal": "cost $5 and ${env:HOST}", "lone": "a $ b"}


def test_missing_env_var_is_an_error_naming_the_variable_and_the_path() -> None:
    error = refused(
        minimal("exporters:\n  debug: {}\n  otlp/phoenix: {endpoint: '${env:PHOENIX_ENDPOINT}', timeout: '${NOPE}'}\n")
    )
    issue = issue_at(error, "exporters.otlp/phoenix.endpoint")
    assert "environment variable PHOENIX_ENDPOINT is not set" in issue.message
    assert "${env:PHOENIX_ENDPOINT:-default}" in issue.message
    assert issue.line == 4
    assert "environment variable NOPE is not set" in issue_at(error, "exporters.otlp/phoenix.timeout").message
    assert len(error.problems) == 2  # no second, derived error (e.g. "invalid endpoint ''") for the same values


def test_env_default_applies_when_unset_or_empty() -> None:
    text = minimal("exporters:\n  debug: {}\n  otlp: {endpoint: '${env:EP:-localhost:4317}', token: '${env:T:-}'}\n")
    exporter = load(text).exporters["otlp"].config
    assert isinstance(exporter, OtlpExporterConfig)
    assert (exporter.endpoint, exporter.token) == ("localhost:4317", "")
    assert load(text, {"EP": ""}).exporters["otlp"].config.endpoint == "localhost:4317"  # type: ignore[attr-defined]
    assert load(text, {"EP": "h:1"}).exporters["otlp"].config.endpoint == "h:1"  # type: ignore[attr-defined]


def test_env_value_is_never_parsed_as_yaml_structure() -> None:
    config = load(
        minimal("exporters: {debug: {verbosity: '${env:V}'}, file: {path: '${env:P}'}}\n"),
        {"V": "{path: /etc/passwd}", "P": "x\nservice: {}\n"},
    )
    assert config.exporters["debug"].config == DebugExporterConfig(verbosity="{path: /etc/passwd}")
    assert config.exporters["file"].config == FileExporterConfig(path="x\nservice: {}\n")


def test_whole_reference_takes_the_type_the_setting_needs() -> None:
    config = load(
        minimal("""\
exporters:
  debug: {}
  otlp:
    endpoint: ${env:EP}
    timeout: ${env:TIMEOUT}
    tls: {insecure: "${env:INSECURE}"}
    token: ${env:TOKEN}
    retries: ${env:RETRIES}
processors: {tail_sampling: {yellow_rate: '${env:RATE}'}}
"""),
        {"EP": "h:1", "TIMEOUT": "2", "INSECURE": "true", "TOKEN": "012345", "RETRIES": "7", "RATE": "0.5"},
    )
    exporter = config.exporters["otlp"].config
    assert exporter == OtlpExporterConfig(
        endpoint="h:1", timeout=2.0, tls=Tls(insecure=True), token="012345", retries=7
    )  # token: a string setting keeps the text as it is; retries and yellow_rate are strict numbers
    assert config.processors["tail_sampling"].config == SamplingConfig(yellow_rate=0.5)


def test_env_values_are_not_echoed_in_messages() -> None:
    error = refused(
        minimal("exporters: {debug: {}, otlp: {endpoint: 'h:1', retries: '${env:SECRET}'}}\n"), {"SECRET": "hunter2"}
    )
    issue = issue_at(error, "exporters.otlp.retries")
    assert "hunter2" not in str(error) and "valid integer" in issue.message


def test_env_references_are_not_expanded_in_keys() -> None:
    error = refused(minimal("exporters: {debug: {}, '${env:X}': {}}\n"), {"X": "file"})
    assert "invalid id '${env:X}'" in issue_at(error, "exporters.${env:X}").message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${file:/etc/passwd}", "unsupported config provider 'file'"),
        ("${env:1BAD}", "invalid environment variable name '1BAD'"),
        ("${}", "invalid environment variable name ''"),
        ("${env:HOST", "unterminated reference"),
    ],
)
def test_malformed_references_are_refused(value: str, message: str) -> None:
    error = refused(minimal(f"exporters: {{debug: {{}}, file: {{path: '{value}'}}}}\n"), {"HOST": "h"})
    assert message in issue_at(error, "exporters.file.path").message


# --------------------------------------------------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("10s", 10.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("2h", 7200.0),
        ("1.5h", 5400.0),
        ("250us", 0.00025),
        ("100ns", 1e-7),
        (" 3s ", 3.0),
        ("0", 0.0),
        (10, 10.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_valid_durations(value: Any, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10 parsecs", "invalid duration '10 parsecs'"),
        ("10", "missing unit"),
        ("-5s", "invalid duration"),
        ("1m 30s", "invalid duration"),
        ("", "empty duration"),
        ("s", "invalid duration"),
        (True, "not a boolean"),
        ([1], "not list"),
        (-1, "not negative"),
        (float("inf"), "finite"),
    ],
)
def test_invalid_durations(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


def test_duration_in_a_component_is_checked_with_its_path() -> None:
    config = load(minimal("processors: {batch: {timeout: 1m30s}}\nexporters: {debug: {}}\n"))
    assert config.processors["batch"].config == BatchConfig(timeout=90.0)
    error = refused(minimal("processors:\n  batch:\n    timeout: 10 parsecs\nexporters: {debug: {}}\n"))
    issue = issue_at(error, "processors.batch.timeout")
    assert issue.message.startswith("invalid duration '10 parsecs'") and issue.line == 4
    error = refused(minimal("processors: {tail_sampling: {decision_wait: 0s}}\nexporters: {debug: {}}\n"))
    assert "greater than 0" in issue_at(error, "processors.tail_sampling.decision_wait").message


# --------------------------------------------------------------------------------------------------------------------
# Endpoints


@pytest.mark.parametrize("value", ["127.0.0.1:4317", "localhost:0", ":4317", "[::1]:4318", "collector.svc:65535"])
def test_valid_endpoints(value: str) -> None:
    assert cfg.parse_endpoint(value) == value


@pytest.mark.parametrize("value", ["localhost", "localhost:", "h:65536", "::1:4317", "h:12ab", "a b:1", "h:-1"])
def test_invalid_endpoints(value: str) -> None:
    with pytest.raises(ValueError, match="expected host:port"):
        cfg.parse_endpoint(value)


# --------------------------------------------------------------------------------------------------------------------
# Registry


def test_registry_refuses_models_that_allow_unknown_keys() -> None:
    class Lax(BaseModel):
        a: int = 1

    class Outer(_Model):
        inner: Lax | None = None

    with pytest.raises(ValueError, match="extra='forbid' on Lax"):
        Registry().register(Factory("processor", "lax", Lax))
    with pytest.raises(ValueError, match="Lax"):
        Registry().register(Factory("processor", "outer", Outer))


def test_registry_refuses_a_second_factory_for_a_type_but_not_the_same_one() -> None:
    registry = Registry()
    factory = Factory("exporter", "debug", DebugExporterConfig)
    registry.register(factory)
    registry.register(Factory("exporter", "debug", DebugExporterConfig))  # equal: a no-op
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Factory("exporter", "debug", FileExporterConfig))
    registry.register(Factory("receiver", "debug", DebugExporterConfig))  # another kind: fine
    assert dict(registry.factories("exporter")) == {"debug": factory}
    with pytest.raises(TypeError):
        registry.factories("exporter")["x"] = factory  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"kind": "connector", "type": "x", "config_class": DebugExporterConfig}, ValueError),
        ({"kind": "exporter", "type": "otlp/x", "config_class": DebugExporterConfig}, ValueError),
        ({"kind": "exporter", "type": "x", "config_class": dict}, TypeError),
    ],
)
def test_factory_checks_its_fields(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        Factory(**kwargs)


def test_module_level_register_and_default_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cfg, "_DEFAULT_REGISTRY", Registry())
    monkeypatch.setattr(cfg, "_builtins_registered", True)  # an empty default registry: no built-in components
    assert cfg.factories("receiver") == {}
    error = refused(minimal("exporters: {debug: {}}\n"), registry=None)
    assert "unknown receiver type 'otlp'; known receiver types: none registered" in str(error)
    for kind in ("receiver", "exporter"):
        for factory in REGISTRY.factories(kind).values():
            cfg.register(factory)
    assert set(cfg.factories("exporter")) == {"otlp", "file", "debug", "review"}
    assert cfg.default_registry().factories("receiver")["otlp"].config_class is ReceiverConfig
    config = load_config_text(minimal("exporters: {debug: {}}\n"), environ={})
    assert list(config.exporters) == ["debug"]


# --------------------------------------------------------------------------------------------------------------------
# Files and `spanguard collector validate`


def test_missing_file_and_invalid_utf8(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "nope.yaml", registry=REGISTRY)
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"receivers: {}\nexporters: {debug: {verbosity: \xff}}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:2: the file is not valid UTF-8"):
        load_config(path, registry=REGISTRY)


def test_main_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(minimal("exporters: {debug: {}, file: {path: x}}\n"))
    assert main_validate(good, environ={}) == 0  # the real factories: validate also checks each can be built
    out, err = capsys.readouterr()
    assert out == "config OK\n"
    assert "warning: exporters.file: exporter 'file' is defined but not used" in err

    bad = tmp_path / "bad.yaml"
    bad.write_text(minimal("exporters:\n  debug: {colour: red}\n"))
    assert main_validate(bad, environ={}) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{bad}:3:11: exporters.debug.colour: unknown key 'colour'; known keys: verbosity" in err


# --------------------------------------------------------------------------------------------------------------------
# Hostile YAML


def test_recursive_alias_and_unsupported_tags_are_refused() -> None:
    error = refused(minimal("exporters: {debug: {}, file: &a {path: *a}}\n"))
    assert "recursive alias" in issue_at(error, "exporters.file.path").message
    error = refused(minimal("exporters: {debug: {}, file: {path: !!python/name:os.system x}}\n"))
    assert "unsupported YAML tag" in issue_at(error, "exporters.file.path").message


def test_alias_bomb_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)]
    error = refused("\n".join(lines) + "\n")
    assert "aliases" in str(error)


def test_forbidden_characters_and_non_string_keys_are_refused_with_position() -> None:
    error = refused(minimal("exporters: {debug: {verbosity: \x07}}\n"))
    assert "YAML error: special characters are not allowed" in str(error) and error.problems[0].line == 2
    error = refused(minimal("exporters:\n  debug: {}\n  ? [a, b]\n  : {}\n"))
    issue = issue_at(error, "exporters")
    assert "keys must be plain strings" in issue.message and issue.line == 4


def test_positions_of_keys_after_a_merge_are_their_own() -> None:
    error = refused(
        minimal("""\
x-defaults: &defaults {timeout: 5s}
exporters:
  debug: {}
  otlp:
    <<: *defaults
    endpoint: nowhere
""")
    )
    assert issue_at(error, "exporters.otlp.endpoint").line == 7
    assert issue_at(error, "x-defaults").line == 2


def test_a_users_recognizer_in_the_redaction_config_is_loaded_and_a_bad_one_is_named() -> None:
    def text(pattern: str) -> str:
        return minimal(
            f"""\
processors:
  redaction:
    recognizers:
      - name: employee id
        supported_entity: EMPLOYEE_ID
        patterns: [{{name: emp, regex: '{pattern}', score: 0.8}}]
        context: [employee]
exporters: {{debug: {{}}}}
"""
        )

    config = load(text(r"E\d{6}"), registry=None)  # the default registry: the built-in redaction config
    redaction = config.processors["redaction"].config
    assert redaction.recognizers[0].supported_entity == "EMPLOYEE_ID" and "EMPLOYEE_ID" in redaction.entities
    error = refused(text(r"E(\d"), registry=None)
    issue = issue_at(error, "processors.redaction.recognizers[0].patterns[0].regex")
    assert "not a valid regular expression" in issue.message and issue.line == 7


def test_main_validate_refuses_a_config_whose_components_cannot_be_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # This loader test's registry has factories without create: valid settings, nothing that can run them.
    path = tmp_path / "c.yaml"
    path.write_text(minimal("exporters: {debug: {}}\n"))
    assert main_validate(path, environ={}, registry=REGISTRY) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "exporters.debug: type 'debug' has no create function" in err
