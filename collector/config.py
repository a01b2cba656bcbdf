"""The collector's config file: loading and validating ``collector.yaml`` in the OpenTelemetry Collector's shape.

Components are made by the :class:`Factory` objects :func:`register`-ed here; :func:`load_config` checks the top level
and ``service``, and each component by its factory's model, reading the YAML through :mod:`spanguard.yamlconfig`.
The behaviour, and the guide for component authors, is ``docs/collector-config.md``.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, get_args

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from spanguard.collector.component import KINDS, TYPE_RE, Factory, Kind
from spanguard.collector.confignet import Endpoint, parse_endpoint
from spanguard.collector.signals import SIGNALS
from spanguard.durations import Duration, parse_duration
from spanguard.yamlconfig import ConfigError, KeyPath, Loading, Problem, kind_of, read_config_file

__all__ = [
    "CONFIG_LABEL",
    "KINDS",
    "SECTIONS",
    "CollectorConfig",
    "ComponentConfig",
    "Duration",
    "Endpoint",
    "Factory",
    "Kind",
    "PipelineConfig",
    "Registry",
    "TelemetryConfig",
    "checked_config",
    "default_registry",
    "factories",
    "load_config",
    "load_config_text",
    "main_validate",
    "parse_component_id",
    "parse_duration",
    "parse_endpoint",
    "register",
    "unbuildable",
]

SECTIONS: Final[dict[Kind, str]] = {
    "receiver": "receivers",
    "processor": "processors",
    "exporter": "exporters",
    "extension": "extensions",
}
_TOP_LEVEL: Final = ("receivers", "processors", "exporters", "extensions", "service")
PIPELINE_TYPES: Final = tuple(SIGNALS)
"""Signal types a pipeline may carry: ``traces``, ``logs``, ``metrics``."""

_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.\-]+")
_ID_HELP: Final = (
    "expected 'type' or 'type/name' (type: a letter, then letters, digits or '_'; name: letters, digits, '_', '.', '-')"
)


# --------------------------------------------------------------------------------------------------------------------
# Problems

CONFIG_LABEL: Final = "collector config"
"""The label of a collector config's :class:`~spanguard.yamlconfig.ConfigError` (its heading says what was refused)."""


# --------------------------------------------------------------------------------------------------------------------
# Factories


def _nested_models(tp: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation refers to, at any depth of ``Optional``, ``list``, ``dict``, unions."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    out: list[type[BaseModel]] = []
    for arg in get_args(tp):
        out.extend(_nested_models(arg))
    return out


def _models_allowing_extra_keys(model: type[BaseModel], seen: set[type[BaseModel]]) -> list[str]:
    if model in seen or issubclass(model, pydantic.RootModel):
        return []
    seen.add(model)
    bad = [] if model.model_config.get("extra") == "forbid" else [model.__name__]
    for info in model.model_fields.values():
        for sub in _nested_models(info.annotation):
            bad.extend(_models_allowing_extra_keys(sub, seen))
    return bad


class Registry:
    """Factories by kind and type. :func:`register` and :func:`factories` use the process-wide default one."""

    def __init__(self) -> None:
        self._factories: dict[Kind, dict[str, Factory]] = {kind: {} for kind in KINDS}

    def register(self, factory: Factory) -> None:
        """Add ``factory``; registering an equal factory again is a no-op, a different one for its type an error.

        Its config model, and every model nested in it, must refuse unknown keys (``extra="forbid"``): that is how
        unknown keys in a component's settings are refused at load.
        """
        if not isinstance(factory, Factory):
            raise TypeError(f"expected a Factory, got {type(factory).__name__}")
        lax = _models_allowing_extra_keys(factory.config_class, set())
        if lax:
            raise ValueError(
                f"{factory.kind} {factory.type!r}: config models must refuse unknown keys; "
                f"set model_config extra='forbid' on {', '.join(lax)}"
            )
        known = self._factories[factory.kind]
        existing = known.get(factory.type)
        if existing is not None and existing != factory:
            raise ValueError(f"a {factory.kind} factory for type {factory.type!r} is already registered")
        known[factory.type] = factory

    def factories(self, kind: Kind) -> Mapping[str, Factory]:
        """The registered factories of ``kind`` by type (a read-only view)."""
        if kind not in KINDS:
            raise ValueError(f"unknown component kind {kind!r}; known: {', '.join(KINDS)}")
        return MappingProxyType(self._factories[kind])


_DEFAULT_REGISTRY = Registry()
_BUILTINS = threading.Lock()
_builtins_registered = False


def default_registry() -> Registry:
    """The process-wide registry that :func:`register`, :func:`factories` and :func:`load_config` use by default.

    It holds the built-in components (:mod:`spanguard.collector.components`), registered on first use so that
    importing this module stays light.
    """
    global _builtins_registered
    if not _builtins_registered:
        with _BUILTINS:
            if not _builtins_registered:
                from spanguard.collector.components import register_builtins

                register_builtins(_DEFAULT_REGISTRY)
                _builtins_registered = True
    return _DEFAULT_REGISTRY


def register(factory: Factory) -> None:
    """Register ``factory`` in the default registry (see :meth:`Registry.register`)."""
    default_registry().register(factory)


def factories(kind: Kind) -> Mapping[str, Factory]:
    """The default registry's factories of ``kind`` by type."""
    return default_registry().factories(kind)


def parse_component_id(text: str) -> tuple[str, str]:
    """``(type, name)`` of a component id ``type`` or ``type/name`` (name ``""`` when absent); else ValueError."""
    type_, sep, name = text.partition("/")
    if not TYPE_RE.fullmatch(type_) or (sep and not _NAME_RE.fullmatch(name)):
        raise ValueError(f"invalid id {text!r}: {_ID_HELP}")
    return type_, name


# --------------------------------------------------------------------------------------------------------------------
# The loaded config


@dataclass(frozen=True)
class ComponentConfig:
    """One configured component: its id (``type`` or ``type/name``) and validated settings."""

    id: str
    type: str
    name: str
    """The part after ``/`` in the id; ``""`` when the id is just the type."""
    config: BaseModel
    """An instance of the factory's ``config_class``."""
    kind: Kind
    factory: Factory = field(repr=False, compare=False)


@dataclass(frozen=True)
class PipelineConfig:
    """A pipeline of ``service.pipelines``: component ids, in the order given."""

    name: str
    """Its id, e.g. ``traces`` or ``traces/review``."""
    receivers: tuple[str, ...]
    processors: tuple[str, ...]
    exporters: tuple[str, ...]
    workers: int = 1
    """Processes that run the pipeline's processors, each owning the traces whose id hashes to it (1: in-process)."""

    @property
    def type(self) -> str:
        """The signal type: ``traces``, ``logs`` or ``metrics``."""
        return self.name.partition("/")[0]


@dataclass(frozen=True)
class TelemetryConfig:
    """``service.telemetry``: the collector's own metrics and logs."""

    metrics_address: str | None = "127.0.0.1:8888"
    """Where Prometheus metrics are served (``/metrics``); ``None``: not served."""
    metrics_level: Literal["none", "basic", "normal", "detailed"] = "normal"
    logs_level: Literal["debug", "info", "warn", "error"] = "info"
    logs_encoding: Literal["console", "json"] = "json"
    """How the collector's own log lines on stderr look: one JSON object each, or plain text for a terminal."""


@dataclass(frozen=True)
class CollectorConfig:
    """A validated collector config."""

    receivers: dict[str, ComponentConfig]
    processors: dict[str, ComponentConfig]
    exporters: dict[str, ComponentConfig]
    extensions: dict[str, ComponentConfig]
    pipelines: dict[str, PipelineConfig]
    telemetry: TelemetryConfig
    service_extensions: tuple[str, ...]
    """Extension ids to start (``service.extensions``), in order."""
    warnings: tuple[Problem, ...] = ()
    """Things that do not stop the collector, e.g. components defined but not used."""
    source: str = "<string>"
    config_dir: Path | None = None
    """Directory of the config file (``None`` for text): relative file names in settings may be resolved against it;
    component models also get it as ``info.context["config_dir"]`` while validating."""

    def components(self, kind: Kind) -> dict[str, ComponentConfig]:
        """The configured components of ``kind`` by id."""
        return {
            "receiver": self.receivers,
            "processor": self.processors,
            "exporter": self.exporters,
            "extension": self.extensions,
        }[kind]


# --------------------------------------------------------------------------------------------------------------------
# The service section's models


def _none_as_empty_list(value: Any) -> Any:
    return [] if value is None else value


def _none_as_empty_dict(value: Any) -> Any:
    return {} if value is None else value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _empty_as_none(value: Any) -> Any:
    return None if value == "" else value


_IdList = Annotated[list[Annotated[str, Field(strict=True)]], BeforeValidator(_none_as_empty_list)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _PipelineModel(_Section):
    receivers: _IdList = []
    processors: _IdList = []
    exporters: _IdList = []
    workers: Annotated[int, Field(strict=True, ge=1, le=64)] = 1


class _MetricsModel(_Section):
    address: Annotated[Endpoint | None, BeforeValidator(_empty_as_none)] = "127.0.0.1:8888"
    level: Annotated[Literal["none", "basic", "normal", "detailed"], BeforeValidator(_lower)] = "normal"


class _LogsModel(_Section):
    level: Annotated[Literal["debug", "info", "warn", "error"], BeforeValidator(_lower)] = "info"
    encoding: Annotated[Literal["console", "json"], BeforeValidator(_lower)] = "json"


class _TelemetryModel(_Section):
    metrics: Annotated[_MetricsModel, BeforeValidator(_none_as_empty_dict)] = _MetricsModel()
    logs: Annotated[_LogsModel, BeforeValidator(_none_as_empty_dict)] = _LogsModel()


_SERVICE_KEYS: Final = ("extensions", "telemetry", "pipelines")


class _ServiceExtensions(_Section):
    extensions: _IdList = []


class _ServiceTelemetry(_Section):
    telemetry: Annotated[_TelemetryModel, BeforeValidator(_none_as_empty_dict)] = _TelemetryModel()


# --------------------------------------------------------------------------------------------------------------------
# Loading


def _build(loading: Loading, root: Any, registry: Registry, config_dir: Path | None) -> CollectorConfig | None:
    if root is None:
        loading.error((), "the config is empty: expected receivers, exporters and service.pipelines")
        return None
    if not isinstance(root, dict):
        loading.error((), f"the top level must be a mapping of {', '.join(_TOP_LEVEL)}, not {kind_of(root)}")
        return None
    for key in root:
        if key == "connectors":
            loading.error(("connectors",), "connectors are not supported by spanguard's collector")
        elif key not in _TOP_LEVEL:
            loading.error((key,), f"unknown key {key!r}; known keys: {', '.join(_TOP_LEVEL)}")

    components: dict[Kind, dict[str, ComponentConfig]] = {kind: {} for kind in KINDS}
    defined: dict[Kind, list[str]] = {kind: [] for kind in KINDS}
    for kind in KINDS:
        section = SECTIONS[kind]
        entries = root.get(section)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            loading.error((section,), f"must be a mapping of {kind} id to settings, not {kind_of(entries)}")
            continue
        known = registry.factories(kind)
        for component_id, raw in entries.items():
            path: KeyPath = (section, component_id)
            defined[kind].append(component_id)
            try:
                type_, name = parse_component_id(component_id)
            except ValueError as exc:
                loading.error(path, f"{exc}")
                continue
            factory = known.get(type_)
            if factory is None:
                listed = ", ".join(sorted(known)) or "none registered"
                loading.error(path, f"unknown {kind} type {type_!r}; known {kind} types: {listed}")
                continue
            if raw is None:
                raw = {}
            if not isinstance(raw, dict):
                loading.error(path, f"settings must be a mapping (or empty), not {kind_of(raw)}")
                continue
            context = {"config_dir": config_dir, "source": loading.source, "component_id": component_id}
            config = loading.validate(factory.config_class, raw, path, context)
            if config is None:
                continue
            components[kind][component_id] = ComponentConfig(component_id, type_, name, config, kind, factory)

    service_raw = root.get("service")
    if service_raw is None:
        service_raw = {}
    pipelines: dict[str, PipelineConfig] = {}
    telemetry = TelemetryConfig()
    service_extensions: tuple[str, ...] = ()
    raw_pipelines: dict[str, Any] = {}
    if "service" not in root:
        loading.error(("service",), "required, but missing: service.pipelines must define at least one pipeline")
    elif not isinstance(service_raw, dict):
        loading.error(("service",), f"must be a mapping with pipelines, not {kind_of(service_raw)}")
    else:
        for key in service_raw:
            if key not in _SERVICE_KEYS:
                loading.error(("service", key), f"unknown key {key!r}; known keys: {', '.join(_SERVICE_KEYS)}")
        if "extensions" in service_raw:
            found = loading.validate(_ServiceExtensions, {"extensions": service_raw["extensions"]}, ("service",))
            if isinstance(found, _ServiceExtensions):
                service_extensions = tuple(found.extensions)
                _check_references(loading, ("service", "extensions"), found.extensions, "extension", defined)
        if "telemetry" in service_raw:
            given = loading.validate(_ServiceTelemetry, {"telemetry": service_raw["telemetry"]}, ("service",))
            if isinstance(given, _ServiceTelemetry):
                metrics, logs = given.telemetry.metrics, given.telemetry.logs
                telemetry = TelemetryConfig(
                    metrics_address=None if metrics.level == "none" else metrics.address,
                    metrics_level=metrics.level,
                    logs_level=logs.level,
                    logs_encoding=logs.encoding,
                )
        found_pipelines = service_raw.get("pipelines")
        if isinstance(found_pipelines, dict) and found_pipelines:
            raw_pipelines = found_pipelines
        elif found_pipelines is None or found_pipelines == {}:
            loading.error(("service", "pipelines"), "at least one pipeline is required, e.g. traces")
        else:
            loading.error(
                ("service", "pipelines"),
                f"must be a mapping of pipeline id to pipeline, not {kind_of(found_pipelines)}",
            )
    for pipeline_id, raw_pipeline in raw_pipelines.items():
        path = ("service", "pipelines", pipeline_id)
        try:
            signal, _ = parse_component_id(pipeline_id)
        except ValueError as exc:
            loading.error(path, f"{exc}".replace("invalid id", "invalid pipeline id"))
            continue
        if signal == "profiles":
            loading.error(path, "profiles pipelines are not supported: use traces, logs or metrics")
            continue
        if signal not in PIPELINE_TYPES:
            loading.error(
                path, f"unknown pipeline type {signal!r}: use traces, logs or metrics (or <type>/<name>, e.g. logs/a)"
            )
            continue
        if raw_pipeline is not None and not isinstance(raw_pipeline, dict):
            loading.error(path, f"must be a mapping of receivers, processors, exporters, not {kind_of(raw_pipeline)}")
            continue
        pipeline = loading.validate(_PipelineModel, raw_pipeline or {}, path)
        if not isinstance(pipeline, _PipelineModel):
            continue
        if not pipeline.receivers:
            loading.error((*path, "receivers"), "a pipeline needs at least one receiver")
        if not pipeline.exporters:
            loading.error((*path, "exporters"), "a pipeline needs at least one exporter")
        for kind, ids in (
            ("receiver", pipeline.receivers),
            ("processor", pipeline.processors),
            ("exporter", pipeline.exporters),
        ):
            _check_references(loading, (*path, SECTIONS[kind]), ids, kind, defined)
            _check_signal(loading, (*path, SECTIONS[kind]), ids, kind, components[kind], signal)
        if pipeline.workers > 1 and signal != "traces":
            loading.error(
                (*path, "workers"),
                f"workers applies to traces pipelines (they are sharded by trace id); a {signal} pipeline runs its "
                "processors in the collector's process: remove workers",
            )
        pipelines[pipeline_id] = PipelineConfig(
            pipeline_id,
            tuple(pipeline.receivers),
            tuple(pipeline.processors),
            tuple(pipeline.exporters),
            pipeline.workers,
        )

    if not loading.problems:
        types = {pid: component.type for pid, component in components["processor"].items()}
        for component_id, component in components["processor"].items():
            check = component.factory.check_pipelines
            for path, message in check(component_id, pipelines, types) if check is not None else ():
                loading.error(path, message)

    used: dict[Kind, set[str]] = {kind: set() for kind in KINDS}
    for raw_pipeline in raw_pipelines.values():  # as written, so that a pipeline with a problem still counts
        for kind in ("receiver", "processor", "exporter"):
            written = raw_pipeline.get(SECTIONS[kind]) if isinstance(raw_pipeline, dict) else None
            used[kind].update(item for item in written or () if isinstance(item, str))
    if isinstance(service_raw, dict) and isinstance(service_raw.get("extensions"), list):
        used["extension"].update(item for item in service_raw["extensions"] if isinstance(item, str))
    for kind in KINDS:
        for component_id in components[kind]:  # a component with a problem has its error already
            if component_id not in used[kind]:
                where = "service.extensions" if kind == "extension" else "any pipeline"
                loading.warn(
                    (SECTIONS[kind], component_id),
                    f"{kind} {component_id!r} is defined but not used in {where}; it will not be started",
                )

    if loading.problems:
        return None
    return CollectorConfig(
        receivers=components["receiver"],
        processors=components["processor"],
        exporters=components["exporter"],
        extensions=components["extension"],
        pipelines=pipelines,
        telemetry=telemetry,
        service_extensions=service_extensions,
        warnings=tuple(loading.warnings),
        source=loading.source or "<string>",
        config_dir=config_dir,
    )


def _check_references(
    loading: Loading, path: KeyPath, ids: Sequence[str], kind: Kind, defined: Mapping[Kind, Sequence[str]]
) -> None:
    seen: set[str] = set()
    for index, component_id in enumerate(ids):
        if component_id in seen:
            loading.error((*path, index), f"{kind} {component_id!r} is listed more than once")
            continue
        seen.add(component_id)
        if component_id not in defined[kind]:
            section = SECTIONS[kind]
            listed = ", ".join(defined[kind]) or "none"
            loading.error((*path, index), f"{kind} {component_id!r} is not defined under {section} (defined: {listed})")


def _check_signal(
    loading: Loading,
    path: KeyPath,
    ids: Sequence[str],
    kind: Kind,
    components: Mapping[str, ComponentConfig],
    signal: str,
) -> None:
    for index, component_id in enumerate(ids):
        component = components.get(component_id)
        if component is not None and signal not in component.factory.signals:
            handled = ", ".join(component.factory.signals)
            loading.error(
                (*path, index),
                f"{kind} {component_id!r} cannot be in a {signal} pipeline: type {component.type!r} handles {handled}",
            )


def load_config_text(
    text: str,
    *,
    source: str = "<string>",
    environ: Mapping[str, str] | None = None,
    registry: Registry | None = None,
    config_dir: str | os.PathLike[str] | None = None,
) -> CollectorConfig:
    """Validate ``text`` as a collector config; raises :class:`ConfigError` with every problem found.

    ``environ`` (default: ``os.environ``) supplies ``${env:VAR}``; ``registry`` (default: :func:`default_registry`)
    the factories; ``source`` names the text in messages; ``config_dir`` is passed on to component models.
    """
    loading = Loading(source, environ, label=CONFIG_LABEL)
    root = loading.parse(text)
    config = _build(
        loading,
        root,
        default_registry() if registry is None else registry,
        None if config_dir is None else Path(config_dir),
    )
    if config is None:
        raise loading.fail()
    return config


def load_config(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    registry: Registry | None = None,
) -> CollectorConfig:
    """Read and validate the collector config file at ``path`` (UTF-8); raises :class:`ConfigError`."""
    source = os.fspath(path)
    text = read_config_file(path, what="config file", label=CONFIG_LABEL)
    return load_config_text(
        text, source=source, environ=environ, registry=registry, config_dir=Path(path).resolve().parent
    )


def unbuildable(config: CollectorConfig) -> list[str]:
    """A problem for each configured component whose factory has no ``create``: such a component must stop the
    collector at start, never be left out of its pipeline (a redaction step that silently does not run sends data
    out unredacted). Unknown types are refused when the config loads."""
    return [
        f"{SECTIONS[kind]}.{cid}: type {component.type!r} has no create function in its factory, so it cannot run; "
        f"register it as Factory({kind!r}, type, ConfigModel, create=make) (docs/collector-config.md)"
        for kind in KINDS
        for cid, component in config.components(kind).items()
        if component.factory.create is None
    ]


def checked_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None, registry: Registry | None = None
) -> CollectorConfig | None:
    """The config at ``path`` if the collector can run it (valid, every component buildable), else ``None``; the
    problems and the warnings (unused components) are printed to stderr."""
    try:
        config = load_config(path, environ=environ, registry=registry)
    except ConfigError as exc:
        for warning in exc.warnings:
            print(warning, file=sys.stderr)
        print(f"spanguard collector: invalid config\n{exc}", file=sys.stderr)
        return None
    except OSError as error:
        print(f"spanguard collector: cannot read config: {error}", file=sys.stderr)
        return None
    for warning in config.warnings:
        print(warning, file=sys.stderr)
    problems = unbuildable(config)
    if problems:
        listed = "\n".join(f"  {problem}" for problem in problems)
        print(f"spanguard collector: invalid config\n{listed}", file=sys.stderr)
        return None
    return config


def main_validate(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None, registry: Registry | None = None
) -> int:
    """``spanguard collector validate``: print ``config OK`` (stdout) or the problems (stderr); 0 when the collector
    can run the config, else 2."""
    if checked_config(path, environ=environ, registry=registry) is None:
        return 2
    print("config OK")
    return 0
