"""The collector's config file: loading and validating ``collector.yaml`` in the OpenTelemetry Collector's shape.

::

    receivers:  {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:4317}}}}
    processors: {redaction: {}, risk: {rules_file: risk.yaml}, tail_sampling: {decision_wait: 10s}, batch: {}}
    exporters:  {otlp/phoenix: {endpoint: 127.0.0.1:4317, tls: {insecure: true}}}
    extensions: {health_check: {endpoint: 127.0.0.1:13133}}
    service:
      extensions: [health_check]
      telemetry: {metrics: {address: 127.0.0.1:8888}, logs: {level: info}}
      pipelines:
        traces: {receivers: [otlp], processors: [redaction, risk, tail_sampling, batch], exporters: [otlp/phoenix]}

Components are made by factories (the Collector's model): each :class:`Factory` names a kind (receiver, processor,
exporter, extension), a type (``otlp``) and the pydantic model of its settings, and is :func:`register`-ed once.
A component id is ``type`` or ``type/name``; its settings are validated by its factory's model.

:func:`load_config` refuses a bad file with one :class:`ConfigError` listing every problem found, each with its YAML
path (``exporters.otlp/phoenix.tls.insecure``) and, when known, ``line:column``. ``docs/collector-config.md`` is the
reference for users; the decisions taken here are listed there too.

Loading is in three steps: the YAML is composed into nodes (so every value keeps its position and duplicate keys are
seen), the nodes are turned into plain values (YAML 1.2 core scalars: only ``true``/``false`` are booleans) with
``${env:VAR}`` references expanded inside string values, and the plain values are validated: the top level and
``service`` here, each component by its factory's model.
"""

from __future__ import annotations

import math
import os
import re
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

import pydantic
import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from spanguard.durations import Duration, parse_duration

__all__ = [
    "KINDS",
    "CollectorConfig",
    "ComponentConfig",
    "ConfigError",
    "ConfigIssue",
    "Duration",
    "Endpoint",
    "Factory",
    "Kind",
    "PipelineConfig",
    "Registry",
    "TelemetryConfig",
    "default_registry",
    "factories",
    "format_path",
    "load_config",
    "load_config_text",
    "main_validate",
    "parse_component_id",
    "parse_duration",
    "parse_endpoint",
    "register",
]

Kind = Literal["receiver", "processor", "exporter", "extension"]
KINDS: Final[tuple[Kind, ...]] = ("receiver", "processor", "exporter", "extension")
_SECTIONS: Final[dict[Kind, str]] = {
    "receiver": "receivers",
    "processor": "processors",
    "exporter": "exporters",
    "extension": "extensions",
}
_TOP_LEVEL: Final = ("receivers", "processors", "exporters", "extensions", "service")
PIPELINE_TYPES: Final = ("traces",)
"""Signal types a pipeline may carry: spanguard's collector handles traces only."""

_TYPE_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.\-]+")
_ID_HELP: Final = (
    "expected 'type' or 'type/name' (type: a letter, then letters, digits or '_'; name: letters, digits, '_', '.', '-')"
)


# --------------------------------------------------------------------------------------------------------------------
# Value types for component configs


def parse_endpoint(value: str) -> str:
    """``value`` when it is ``host:port`` (host may be empty, meaning every interface, or ``[v6]``); else ValueError."""
    host, sep, port = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    valid = (
        bool(sep)
        and re.fullmatch(r"[0-9]{1,5}", port) is not None
        and int(port) <= 65535
        and (bracketed or (":" not in host and "[" not in host and "]" not in host))
        and not any(ch.isspace() for ch in host)
    )
    if not valid:
        raise ValueError(f"invalid endpoint {value!r}: expected host:port, e.g. 127.0.0.1:4317 or [::1]:4317")
    return value


Endpoint = Annotated[str, AfterValidator(parse_endpoint)]
"""A ``host:port`` string for component config models (the port must be 0..65535)."""


# --------------------------------------------------------------------------------------------------------------------
# Problems


@dataclass(frozen=True)
class ConfigIssue:
    """One problem (or warning) found in a config, at a YAML path and, when known, a 1-based line and column."""

    path: str
    """The YAML path, e.g. ``exporters.otlp/phoenix.tls.insecure`` or ``service.pipelines.traces.receivers[0]``;
    empty for the document as a whole."""
    message: str
    source: str = "<string>"
    line: int | None = None
    column: int | None = None
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}" if self.column is None else f":{self.line}:{self.column}"
        label = "warning: " if self.severity == "warning" else ""
        return f"{where}: {label}{self.path}: {self.message}" if self.path else f"{where}: {label}{self.message}"


class ConfigError(Exception):
    """A config that cannot be used: every problem found, each naming its YAML path (and position when known)."""

    def __init__(
        self, issues: Sequence[ConfigIssue], *, source: str = "<string>", warnings: Sequence[ConfigIssue] = ()
    ) -> None:
        self.issues: tuple[ConfigIssue, ...] = tuple(issues)
        self.source = source
        self.warnings: tuple[ConfigIssue, ...] = tuple(warnings)
        self.errors: list[tuple[str, str]] = [(issue.path, issue.message) for issue in self.issues]
        """``(path, message)`` per problem."""
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.issues)
        head = f"{self.source}: invalid collector config ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([head, *(f"  {issue}" for issue in self.issues)])

    def __str__(self) -> str:
        return self._render()


# --------------------------------------------------------------------------------------------------------------------
# Factories


@dataclass(frozen=True)
class Factory:
    """Makes components of one kind and type; ``config_class`` validates their settings (unknown keys refused)."""

    kind: Kind
    type: str
    config_class: type[BaseModel]
    create: Callable[..., Any] | None = None
    """Builds the component from its validated config; the signature is the collector service's business."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown component kind {self.kind!r}; known: {', '.join(KINDS)}")
        if not isinstance(self.type, str) or not _TYPE_RE.fullmatch(self.type):
            raise ValueError(f"invalid component type {self.type!r}: a letter, then letters, digits or '_'")
        if not (isinstance(self.config_class, type) and issubclass(self.config_class, BaseModel)):
            raise TypeError(f"config_class of {self.kind} {self.type!r} must be a pydantic model class")


def _unwrap(tp: Any) -> Any:
    """``tp`` without ``Annotated`` and without ``None`` in an optional."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
            continue
        if origin is Union or isinstance(tp, types.UnionType):
            args = [arg for arg in get_args(tp) if arg is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


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


def default_registry() -> Registry:
    """The process-wide registry that :func:`register`, :func:`factories` and :func:`load_config` use by default."""
    return _DEFAULT_REGISTRY


def register(factory: Factory) -> None:
    """Register ``factory`` in the default registry (see :meth:`Registry.register`)."""
    _DEFAULT_REGISTRY.register(factory)


def factories(kind: Kind) -> Mapping[str, Factory]:
    """The default registry's factories of ``kind`` by type."""
    return _DEFAULT_REGISTRY.factories(kind)


def parse_component_id(text: str) -> tuple[str, str]:
    """``(type, name)`` of a component id ``type`` or ``type/name`` (name ``""`` when absent); else ValueError."""
    type_, sep, name = text.partition("/")
    if not _TYPE_RE.fullmatch(type_) or (sep and not _NAME_RE.fullmatch(name)):
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
        """The signal type (always ``traces`` here)."""
        return self.name.partition("/")[0]


@dataclass(frozen=True)
class TelemetryConfig:
    """``service.telemetry``: the collector's own metrics and logs."""

    metrics_address: str | None = "127.0.0.1:8888"
    """Where Prometheus metrics are served (``/metrics``); ``None``: not served."""
    metrics_level: Literal["none", "basic", "normal", "detailed"] = "normal"
    logs_level: Literal["debug", "info", "warn", "error"] = "info"
    logs_encoding: Literal["console", "json"] = "console"


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
    warnings: tuple[ConfigIssue, ...] = ()
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
    encoding: Literal["console", "json"] = "console"


class _TelemetryModel(_Section):
    metrics: Annotated[_MetricsModel, BeforeValidator(_none_as_empty_dict)] = _MetricsModel()
    logs: Annotated[_LogsModel, BeforeValidator(_none_as_empty_dict)] = _LogsModel()


_SERVICE_KEYS: Final = ("extensions", "telemetry", "pipelines")


class _ServiceExtensions(_Section):
    extensions: _IdList = []


class _ServiceTelemetry(_Section):
    telemetry: Annotated[_TelemetryModel, BeforeValidator(_none_as_empty_dict)] = _TelemetryModel()


# --------------------------------------------------------------------------------------------------------------------
# YAML: nodes with positions, YAML 1.2 core scalars

_STR: Final = "tag:yaml.org,2002:str"
_INT: Final = "tag:yaml.org,2002:int"
_FLOAT: Final = "tag:yaml.org,2002:float"
_BOOL: Final = "tag:yaml.org,2002:bool"
_NULL: Final = "tag:yaml.org,2002:null"
_MERGE: Final = "tag:yaml.org,2002:merge"
_MAP: Final = "tag:yaml.org,2002:map"
_SEQ: Final = "tag:yaml.org,2002:seq"

_INT_RE: Final = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_RE: Final = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_BOOL_RE: Final = re.compile(r"true|True|TRUE|false|False|FALSE")
_NULL_RE: Final = re.compile(r"~|null|Null|NULL|")


class _Resolver(BaseResolver):
    """YAML 1.2 core schema (as the Collector's Go YAML): ``yes``/``no``/``on``/``off`` stay strings, no octal ``010``,
    no timestamps."""

    yaml_implicit_resolvers: dict = {}  # PyYAML's class-level table, filled below


def _anchored(pattern: re.Pattern[str]) -> re.Pattern[str]:
    return re.compile(rf"(?:{pattern.pattern})\Z")  # PyYAML's resolver matches at the start only


_Resolver.add_implicit_resolver(_BOOL, _anchored(_BOOL_RE), list("tTfF"))
_Resolver.add_implicit_resolver(_INT, _anchored(_INT_RE), list("-+0123456789"))
_Resolver.add_implicit_resolver(_FLOAT, _anchored(_FLOAT_RE), list("-+0123456789."))
_Resolver.add_implicit_resolver(_NULL, _anchored(_NULL_RE), ["~", "n", "N", ""])
_Resolver.add_implicit_resolver(_MERGE, re.compile(r"<<\Z"), ["<"])


class _Loader(Reader, Scanner, Parser, Composer, _Resolver):
    """Composes YAML into nodes (each with its start mark); constructs nothing."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)


_SCALAR_RESOLVER: Final = _Resolver()
_MAX_NODES: Final = 100_000
"""Values built at most (aliases are expanded): a bound against alias bombs."""


def _scalar(tag: str, text: str) -> Any:
    """The Python value of a scalar with a YAML core tag; ValueError for text the tag does not fit or other tags."""
    if tag == _STR:
        return text
    if tag == _NULL:
        if _NULL_RE.fullmatch(text):
            return None
    elif tag == _BOOL:
        if _BOOL_RE.fullmatch(text):
            return text.lower() == "true"
    elif tag == _INT:
        if _INT_RE.fullmatch(text):
            if text.startswith("0o"):
                return int(text[2:], 8)
            return int(text, 16) if text.startswith("0x") else int(text, 10)
    elif tag == _FLOAT:
        if _FLOAT_RE.fullmatch(text):
            lowered = text.lower()
            if lowered.endswith(".inf"):
                return -math.inf if lowered.startswith("-") else math.inf
            return math.nan if lowered.endswith(".nan") else float(text)
    else:
        raise ValueError(f"unsupported YAML tag {tag!r}")
    raise ValueError(f"{text!r} is not a valid {tag.rpartition(':')[2]}")


class _TooLarge(Exception):
    pass


def format_path(path: Sequence[str | int]) -> str:
    """``("exporters", "otlp/x", "headers", 0)`` as ``exporters.otlp/x.headers[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


_ENV_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCHEME_RE: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):(?!-)")

Path_ = tuple[str | int, ...]


class _Loading:
    """One load: the plain values, each path's position, the problems found."""

    def __init__(self, source: str, environ: Mapping[str, str]) -> None:
        self.source = source
        self.environ = environ
        self.positions: dict[Path_, tuple[int, int]] = {}
        self.issues: list[ConfigIssue] = []
        self.warnings: list[ConfigIssue] = []
        self.env_paths: set[Path_] = set()
        """Paths whose value came (partly) from the environment: their values are not echoed in messages."""
        self.failed: set[Path_] = set()
        """Paths with a problem found while reading the YAML (a bad reference, a bad tag): validation errors under
        them would only repeat it."""
        self.env_typed: dict[Path_, Any] = {}
        """Typed values of whole-reference strings (``${env:PORT}`` -> 4317), by path."""
        self.built = 0

    # -- problems

    def position(self, path: Path_) -> tuple[int, int] | None:
        for end in range(len(path), -1, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return None

    def _issue(self, path: Path_, message: str, mark: Any, severity: Literal["error", "warning"]) -> ConfigIssue:
        pos = (mark.line + 1, mark.column + 1) if mark is not None else self.position(path)
        line, column = pos if pos is not None else (None, None)
        return ConfigIssue(format_path(path), message, self.source, line, column, severity)

    def error(self, path: Path_, message: str, mark: Any = None) -> None:
        self.issues.append(self._issue(path, message, mark, "error"))

    def warn(self, path: Path_, message: str) -> None:
        self.warnings.append(self._issue(path, message, None, "warning"))

    def fail(self) -> ConfigError:
        ordered = sorted(self.issues, key=lambda i: (i.line is None, i.line or 0, i.column or 0))
        return ConfigError(ordered, source=self.source, warnings=self.warnings)

    # -- YAML to plain values

    def parse(self, text: str) -> Any:
        """The document's plain value; raises ConfigError for syntax errors, no document or several."""
        loader: _Loader | None = None
        nodes: list[Node] = []
        try:
            loader = _Loader(text)
            while loader.check_node():
                nodes.append(loader.get_node())
        except yaml.MarkedYAMLError as exc:
            problem = exc.problem or "invalid YAML"
            context = f" ({exc.context})" if exc.context else ""
            self.error((), f"YAML syntax error: {problem}{context}", exc.problem_mark or exc.context_mark)
            raise self.fail() from None
        except yaml.YAMLError as exc:  # ReaderError: characters YAML does not allow
            position = getattr(exc, "position", None)
            mark = None
            if isinstance(position, int):
                line = text.count("\n", 0, position)
                mark = yaml.Mark("", position, line, position - (text.rfind("\n", 0, position) + 1), None, None)
            reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
            character = getattr(exc, "character", None)
            shown = f" (#x{character:04x})" if isinstance(character, int) else ""
            self.error((), f"YAML error: {reason}{shown}", mark)
            raise self.fail() from None
        finally:
            if loader is not None:
                loader.dispose()
        if not nodes:
            self.error((), "the config is empty: expected receivers, exporters and service.pipelines")
            raise self.fail()
        if len(nodes) > 1:
            self.error((), "only one YAML document is allowed (found a second one)", nodes[1].start_mark)
            raise self.fail()
        try:
            return self.build(nodes[0], (), set())
        except _TooLarge:
            self.error((), f"the document expands (through YAML aliases) to more than {_MAX_NODES} values")
            raise self.fail() from None

    def build(self, node: Node, path: Path_, ancestors: set[int]) -> Any:
        self.built += 1
        if self.built > _MAX_NODES:
            raise _TooLarge
        if isinstance(node, ScalarNode):
            try:
                value = _scalar(node.tag, node.value)
            except ValueError as exc:
                self.error(path, str(exc), node.start_mark)
                self.failed.add(path)
                return None
            if isinstance(value, str) and "$" in value:
                return self.expand(value, path)
            return value
        if id(node) in ancestors:
            self.error(path, "a YAML alias refers to a value that contains it (recursive alias)", node.start_mark)
            self.failed.add(path)
            return None
        inner = ancestors | {id(node)}
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                self.error(path, f"unsupported YAML tag {node.tag!r}", node.start_mark)
                self.failed.add(path)
                return None
            items = []
            for index, item in enumerate(node.value):
                self.positions.setdefault((*path, index), (item.start_mark.line + 1, item.start_mark.column + 1))
                items.append(self.build(item, (*path, index), inner))
            return items
        assert isinstance(node, MappingNode)
        if node.tag != _MAP:
            self.error(path, f"unsupported YAML tag {node.tag!r}", node.start_mark)
            self.failed.add(path)
            return None
        result: dict[str, Any] = {}
        first: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE:
                for source in self._merge_sources(value_node, path, inner):
                    for key, value in source.items():
                        merged.setdefault(key, value)
                continue
            if not isinstance(key_node, ScalarNode):
                self.error(path, "mapping keys must be plain strings, not lists or mappings", key_node.start_mark)
                continue
            key = key_node.value
            key_path = (*path, key)
            if key in first:
                self.error(
                    key_path,
                    f"duplicate key {key!r} (first defined at line {first[key].line + 1}); the second is not used",
                    key_node.start_mark,
                )
                continue
            first[key] = key_node.start_mark
            self.positions[key_path] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = self.build(value_node, key_path, inner)
        for key, mark in first.items():  # merged-in mappings record their own positions; explicit keys win
            self.positions[(*path, key)] = (mark.line + 1, mark.column + 1)
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def _merge_sources(self, node: Node, path: Path_, ancestors: set[int]) -> list[dict[str, Any]]:
        nodes = node.value if isinstance(node, SequenceNode) else [node]
        sources = []
        for each in nodes:
            if not isinstance(each, MappingNode):
                self.error(path, "a '<<' merge key needs a mapping or a list of mappings", each.start_mark)
                continue
            value = self.build(each, path, ancestors)
            if isinstance(value, dict):
                sources.append(value)
        return sources

    # -- ${env:VAR}

    def expand(self, text: str, path: Path_) -> str:
        """``text`` with ``$$`` and ``${...}`` references expanded (refusals are recorded as problems).

        The result is a string; expanded text is never parsed as YAML structure. When the value is exactly one
        reference whose text reads as a YAML number, boolean or null, that typed value is kept aside
        (:attr:`env_typed`) for settings that do not take a string (see :meth:`validate`).
        """
        out: list[str] = []
        pos = 0
        references = 0
        failed = False
        while True:
            dollar = text.find("$", pos)
            if dollar < 0:
                out.append(text[pos:])
                break
            out.append(text[pos:dollar])
            following = text[dollar + 1 : dollar + 2]
            if following == "$":
                out.append("$")
                pos = dollar + 2
                continue
            if following != "{":
                out.append("$")
                pos = dollar + 1
                continue
            end = text.find("}", dollar + 2)
            if end < 0:
                self.error(path, f"unterminated reference {text[dollar:]!r}: missing '}}' (write $$ for a literal $)")
                failed = True
                break
            references += 1
            value = self._lookup(text[dollar + 2 : end], path)
            if value is None:
                failed = True
            else:
                out.append(value)
            pos = end + 1
        if failed:
            self.failed.add(path)
            return ""
        expanded = "".join(out)
        if references:
            self.env_paths.add(path)
        whole = references == 1 and text.startswith("${") and text.find("}") == len(text) - 1
        if whole and expanded:
            tag = _SCALAR_RESOLVER.resolve(ScalarNode, expanded, (True, False))
            if tag in (_NULL, _BOOL, _INT, _FLOAT):
                self.env_typed[path] = _scalar(tag, expanded)
        return expanded

    def _lookup(self, reference: str, path: Path_) -> str | None:
        """The value of one ``${...}`` reference (the text between the braces); None, with a problem, when refused."""
        if reference.startswith("env:"):
            body = reference[4:]
        else:
            scheme = _SCHEME_RE.match(reference)
            if scheme is not None:
                self.error(
                    path,
                    f"unsupported config provider {scheme.group(1)!r} in '${{{reference}}}': only env is supported, "
                    "as ${env:NAME} (write $$ for a literal $)",
                )
                return None
            body = reference
        name, has_default, default = body.partition(":-")
        if not _ENV_NAME_RE.fullmatch(name):
            self.error(
                path,
                f"invalid environment variable name {name!r} in '${{{reference}}}': "
                "use letters, digits and '_' (write $$ for a literal $)",
            )
            return None
        value = self.environ.get(name)
        if value is None or (has_default and value == ""):
            if has_default:
                return default
            self.error(
                path,
                f"environment variable {name} is not set (set it, or give a default: ${{env:{name}:-default}})",
            )
            return None
        return value

    # -- pydantic errors to YAML paths

    def validate(self, model: type[BaseModel], raw: Any, base: Path_, context: Any = None) -> BaseModel | None:
        """``raw`` validated by ``model``, or None with its problems recorded under ``base``.

        A setting given as exactly one ``${env:VAR}`` reference is a string first (so a string setting gets the
        variable's text as it is); if the setting refuses that string and the text reads as a YAML number, boolean
        or null, that value is tried instead: the setting's type decides, as in the OTel Collector.
        """
        try:
            return model.model_validate(raw, context=context)
        except pydantic.ValidationError as exc:
            error = exc
        retyped = raw
        for err in error.errors(include_url=False):
            relative = _data_path(err["loc"], raw)
            typed = self.env_typed.get((*base, *relative), _MISSING)
            if relative and typed is not _MISSING:
                retyped = _replaced(retyped, relative, typed)
        if retyped is not raw:
            try:
                return model.model_validate(retyped, context=context)
            except pydantic.ValidationError as exc:
                error, raw = exc, retyped
        self.validation_errors(error, base, raw, model)
        return None

    def validation_errors(self, exc: pydantic.ValidationError, base: Path_, raw: Any, model: type[BaseModel]) -> None:
        for err in exc.errors(include_url=False):
            relative = _data_path(err["loc"], raw)
            path = (*base, *relative)
            if any(path[:end] in self.failed for end in range(len(path) + 1)):
                continue
            self.error(path, self._message(err, model, relative, path))

    def _message(self, err: Any, model: type[BaseModel], relative: Path_, path: Path_) -> str:
        kind = err["type"]
        if kind == "extra_forbidden":
            owner = _model_at(model, relative[:-1])
            known = f"; known keys: {', '.join(_field_keys(owner))}" if owner is not None else ""
            return f"unknown key {relative[-1]!r}{known}" if relative else f"unknown key{known}"
        if kind == "missing":
            return "required, but missing"
        message = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            if message.startswith(prefix):
                message = message[len(prefix) :]
        value = err.get("input")
        if path not in self.env_paths and (value is None or isinstance(value, (str, int, float, bool))):
            shown = repr(value)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            if shown not in message and str(value) not in message:
                message = f"{message} (got {shown})"
        return message


_MISSING: Final = object()


def _replaced(value: Any, path: Path_, new: Any) -> Any:
    """A copy of ``value`` (plain dicts and lists) with the value at ``path`` replaced by ``new``."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy: Any = dict(value)
    else:
        copy = list(value)
    copy[head] = _replaced(value[head], rest, new)
    return copy


def _data_path(loc: Sequence[str | int], raw: Any) -> Path_:
    """The part of a pydantic error location that names data: union member tags (``'int'``, ``'function-after[...]'``)
    and ``'[key]'`` markers are left out; a last key not in the data (a missing field) is kept."""
    out: list[str | int] = []
    current = raw
    for index, part in enumerate(loc):
        if isinstance(current, dict) and isinstance(part, str) and part in current:
            out.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            out.append(part)
            current = current[part]
        elif index == len(loc) - 1 and isinstance(current, dict) and isinstance(part, str):
            out.append(part)
    return tuple(out)


def _model_at(model: type[BaseModel], relative: Path_) -> type[BaseModel] | None:
    """The pydantic model that validates the value at ``relative`` under ``model``, if one does."""
    tp: Any = model
    for part in relative:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            found = next((f for n, f in tp.model_fields.items() if part in (n, f.alias)), None)
            if found is None:
                return None
            tp = found.annotation
            continue
        origin, args = get_origin(tp), get_args(tp)
        if isinstance(part, int) and origin in (list, tuple, set, frozenset, Sequence) and args:
            tp = args[0]
        elif origin in (dict, Mapping) and len(args) == 2:
            tp = args[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _field_keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


# --------------------------------------------------------------------------------------------------------------------
# Loading


def _build(loading: _Loading, root: Any, registry: Registry, config_dir: Path | None) -> CollectorConfig | None:
    if root is None:
        loading.error((), "the config is empty: expected receivers, exporters and service.pipelines")
        return None
    if not isinstance(root, dict):
        loading.error((), f"the top level must be a mapping of {', '.join(_TOP_LEVEL)}, not {_kind_of(root)}")
        return None
    for key in root:
        if key == "connectors":
            loading.error(("connectors",), "connectors are not supported by spanguard's collector")
        elif key not in _TOP_LEVEL:
            loading.error((key,), f"unknown key {key!r}; known keys: {', '.join(_TOP_LEVEL)}")

    components: dict[Kind, dict[str, ComponentConfig]] = {kind: {} for kind in KINDS}
    defined: dict[Kind, list[str]] = {kind: [] for kind in KINDS}
    for kind in KINDS:
        section = _SECTIONS[kind]
        entries = root.get(section)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            loading.error((section,), f"must be a mapping of {kind} id to settings, not {_kind_of(entries)}")
            continue
        known = registry.factories(kind)
        for component_id, raw in entries.items():
            path: Path_ = (section, component_id)
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
                loading.error(path, f"settings must be a mapping (or empty), not {_kind_of(raw)}")
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
        loading.error(("service",), f"must be a mapping with pipelines, not {_kind_of(service_raw)}")
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
            found = loading.validate(_ServiceTelemetry, {"telemetry": service_raw["telemetry"]}, ("service",))
            if isinstance(found, _ServiceTelemetry):
                metrics, logs = found.telemetry.metrics, found.telemetry.logs
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
                f"must be a mapping of pipeline id to pipeline, not {_kind_of(found_pipelines)}",
            )
    for pipeline_id, raw_pipeline in raw_pipelines.items():
        path: Path_ = ("service", "pipelines", pipeline_id)
        try:
            signal, _ = parse_component_id(pipeline_id)
        except ValueError as exc:
            loading.error(path, f"{exc}".replace("invalid id", "invalid pipeline id"))
            continue
        if signal in ("logs", "metrics", "profiles"):
            loading.error(path, f"{signal} pipelines are not supported: spanguard's collector handles traces only")
            continue
        if signal not in PIPELINE_TYPES:
            loading.error(path, f"unknown pipeline type {signal!r}: use traces (or traces/<name>)")
            continue
        if raw_pipeline is not None and not isinstance(raw_pipeline, dict):
            loading.error(path, f"must be a mapping of receivers, processors, exporters, not {_kind_of(raw_pipeline)}")
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
            _check_references(loading, (*path, _SECTIONS[kind]), ids, kind, defined)
        pipelines[pipeline_id] = PipelineConfig(
            pipeline_id,
            tuple(pipeline.receivers),
            tuple(pipeline.processors),
            tuple(pipeline.exporters),
            pipeline.workers,
        )

    used: dict[Kind, set[str]] = {kind: set() for kind in KINDS}
    for raw_pipeline in raw_pipelines.values():  # as written, so that a pipeline with a problem still counts
        for kind in ("receiver", "processor", "exporter"):
            ids = raw_pipeline.get(_SECTIONS[kind]) if isinstance(raw_pipeline, dict) else None
            used[kind].update(item for item in ids or () if isinstance(item, str))
    if isinstance(service_raw, dict) and isinstance(service_raw.get("extensions"), list):
        used["extension"].update(item for item in service_raw["extensions"] if isinstance(item, str))
    for kind in KINDS:
        for component_id in components[kind]:  # a component with a problem has its error already
            if component_id not in used[kind]:
                where = "service.extensions" if kind == "extension" else "any pipeline"
                loading.warn(
                    (_SECTIONS[kind], component_id),
                    f"{kind} {component_id!r} is defined but not used in {where}; it will not be started",
                )

    if loading.issues:
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
        source=loading.source,
        config_dir=config_dir,
    )


def _check_references(
    loading: _Loading, path: Path_, ids: Sequence[str], kind: Kind, defined: Mapping[Kind, Sequence[str]]
) -> None:
    seen: set[str] = set()
    for index, component_id in enumerate(ids):
        if component_id in seen:
            loading.error((*path, index), f"{kind} {component_id!r} is listed more than once")
            continue
        seen.add(component_id)
        if component_id not in defined[kind]:
            section = _SECTIONS[kind]
            listed = ", ".join(defined[kind]) or "none"
            loading.error((*path, index), f"{kind} {component_id!r} is not defined under {section} (defined: {listed})")


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping" if isinstance(value, dict) else type(value).__name__


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
    loading = _Loading(source, os.environ if environ is None else environ)
    root = loading.parse(text)
    config = _build(
        loading,
        root,
        _DEFAULT_REGISTRY if registry is None else registry,
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
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue("", f"cannot read the config file: {exc.strerror or exc}", source)], source=source
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            [ConfigIssue("", f"the file is not valid UTF-8 (byte {exc.start})", source, line, None)], source=source
        ) from None
    return load_config_text(
        text, source=source, environ=environ, registry=registry, config_dir=Path(path).resolve().parent
    )


def main_validate(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None, registry: Registry | None = None
) -> int:
    """``spanguard collector validate``: print ``config OK`` (stdout) or the problems (stderr); 0 when valid, else 2.

    Warnings (unused components) go to stderr either way.
    """
    try:
        config = load_config(path, environ=environ, registry=registry)
    except ConfigError as exc:
        for warning in exc.warnings:
            print(warning, file=sys.stderr)
        print(exc, file=sys.stderr)
        return 2
    for warning in config.warnings:
        print(warning, file=sys.stderr)
    print("config OK")
    return 0
