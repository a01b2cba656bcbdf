"""The one loader for every YAML file spanguard reads: collector config, risk rules, gate policies, review settings.

A file is composed into YAML nodes (so every value keeps its line and column and duplicate keys are seen), turned
into plain values (YAML 1.2 core scalars: only ``true``/``false`` are booleans) with ``${env:VAR}`` references
expanded inside string values, and validated by a pydantic model. Every problem found is raised at once as one
:class:`ConfigError`, one line per problem: ``file:line:column: path.to.key: what is wrong``. Behaviour (scalars,
environment references, paths): docs/collector-config.md ("Values", "Environment variables", "Problems").
"""

from __future__ import annotations

import math
import os
import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar, Union, get_args, get_origin

import pydantic
import yaml
from pydantic import BaseModel
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

__all__ = [
    "HIDDEN",
    "ConfigError",
    "Describe",
    "KeyPath",
    "Loading",
    "Problem",
    "field_keys",
    "format_path",
    "kind_of",
    "load_data",
    "load_file",
    "load_once",
    "load_text",
    "model_at",
    "read_config_file",
    "relative_to_config",
]

KeyPath = tuple[str | int, ...]
"""A place in a document: mapping keys and list indexes from the top, e.g. ``("rules", 0, "match")``."""

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


# --------------------------------------------------------------------------------------------------------------------
# Problems


_PLAIN_KEY: Final = re.compile(r'[^.\[\]"]+')


def format_path(path: Sequence[str | int]) -> str:
    """``("exporters", "otlp/x", "headers", 0)`` as ``exporters.otlp/x.headers[0]``; a key holding a dot, a bracket
    or a double quote (or an empty one) is written ``["gen_ai.request.model"]``, so that a path reads one way only."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):
            out += '["' + part.replace("\\", "\\\\").replace('"', '\\"') + '"]'
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True)
class Problem:
    """One problem (or warning) in a config: its YAML path, what is wrong, and where (1-based), when known."""

    path: str
    """The YAML path, e.g. ``exporters.otlp/phoenix.tls.insecure`` or ``rules[0].name``; empty for the document."""
    message: str
    source: str | None = "<string>"
    """The file name (``<string>`` for text); ``None`` for a mapping that came from no file."""
    line: int | None = None
    column: int | None = None
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = self.source
        if where is not None and self.line is not None:
            where += f":{self.line}" if self.column is None else f":{self.line}:{self.column}"
        label = "warning: " if self.severity == "warning" else ""
        text = f"{label}{self.path}: {self.message}" if self.path else f"{label}{self.message}"
        return f"{where}: {text}" if where is not None else text


class ConfigError(ValueError):
    """A config that cannot be used: every problem found, one line each (``file:line:column: path: message``).

    The one error type of every YAML spanguard reads; what kind of config it was is its :attr:`label`, which the
    loading call sets.
    """

    def __init__(
        self,
        problems: Sequence[Problem] | str,
        *,
        source: str | None = None,
        warnings: Sequence[Problem] = (),
        label: str | None = None,
    ) -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems, source)]
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.source = source
        self.label = label
        """What kind of config it is (``"collector config"``): when set, the message starts with a heading line
        ``file: invalid <label> (N problems):`` and the problems follow, indented."""
        self.warnings: tuple[Problem, ...] = tuple(warnings)
        self.errors: list[tuple[str, str]] = [(problem.path, problem.message) for problem in self.problems]
        """``(path, message)`` per problem."""
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.label is None:
            return "\n".join(str(problem) for problem in self.problems)
        count = len(self.problems)
        head = f"invalid {self.label} ({count} problem{'s' if count != 1 else ''}):"
        if self.source is not None:
            head = f"{self.source}: {head}"
        return "\n".join([head, *(f"  {problem}" for problem in self.problems)])


# --------------------------------------------------------------------------------------------------------------------
# Models: what a path refers to


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


def model_at(model: type[BaseModel], relative: KeyPath) -> type[BaseModel] | None:
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


def field_keys(model: type[BaseModel]) -> list[str]:
    """The keys ``model`` takes, in declaration order."""
    return [info.alias or name for name, info in model.model_fields.items()]


def kind_of(value: Any) -> str:
    """What a plain YAML value is, for messages: ``a mapping``, ``a list``, ``a string``, ``null``, ..."""
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


def relative_to_config(name: str | os.PathLike[str], context: Mapping[str, Any] | None) -> Path:
    """``name`` resolved against the directory of the config file being validated (``context["config_dir"]``, as
    the loader passes it to validators), or as given when the config came from no file."""
    path = Path(name)
    config_dir = (context or {}).get("config_dir")
    return path if path.is_absolute() or config_dir is None else Path(config_dir) / path


def load_once(name: str | os.PathLike[str], context: Mapping[str, Any] | None, load: Callable[[Path], T]) -> T:
    """``load(path)`` of a file named in the config being validated (``rules_file: risk.yaml``), for validators:
    ``name`` resolved by :func:`relative_to_config`, and loaded once per load of the config, so a file named twice
    is read once (the second place gets the first's result, or its :class:`ConfigError`)."""
    path = relative_to_config(name, context)
    files = (context or {}).get("loaded_files")
    if files is None:
        return load(path)
    key = (os.path.abspath(path), load)
    if key not in files:
        try:
            files[key] = (load(path), None)
        except ConfigError as refused:
            files[key] = (None, refused)
    value, problem = files[key]
    if problem is not None:
        raise problem
    return value


class _Hidden:
    def __repr__(self) -> str:
        return "a value from the environment (not shown)"


HIDDEN: Final = _Hidden()
"""Put in place of a pydantic error's ``input`` when the value came from the environment (it may be a secret)."""

Describe = Callable[[Any, type[BaseModel], KeyPath], "str | None"]
"""A config's own wording for a pydantic error: ``(error, model, path under the model) -> message``, or ``None`` for
the loader's wording. The error's ``input`` is :data:`HIDDEN` when it came from the environment."""


def _default_message(err: Any, model: type[BaseModel], relative: KeyPath) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        owner = model_at(model, relative[:-1])
        known = f"; known keys: {', '.join(field_keys(owner))}" if owner is not None else ""
        return f"unknown key {relative[-1]!r}{known}" if relative else f"unknown key{known}"
    if kind == "missing":
        return "required, but missing"
    message = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    value = err.get("input")
    if value is not HIDDEN and (value is None or isinstance(value, (str, int, float, bool))):
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        if shown not in message and str(value) not in message:
            message = f"{message} (got {shown})"
    return message


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


_ENV_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCHEME_RE: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):(?!-)")
_MISSING: Final = object()


def _replaced(value: Any, path: KeyPath, new: Any) -> Any:
    """A copy of ``value`` (plain dicts and lists) with the value at ``path`` replaced by ``new``."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replaced(value[head], rest, new)
    return copy


def _data_path(loc: Sequence[str | int], raw: Any) -> KeyPath:
    """The part of a pydantic error location that names data: union member tags (``'int'``, ``'function-after[...]'``)
    and ``'[key]'`` markers are left out; a last key not in the data (a missing field) is kept."""
    out: list[str | int] = []
    current = raw
    for index, part in enumerate(loc):
        if isinstance(current, Mapping) and isinstance(part, str) and part in current:
            out.append(part)
            current = current[part]
        elif isinstance(current, (list, tuple)) and isinstance(part, int) and 0 <= part < len(current):
            out.append(part)
            current = current[part]
        elif index == len(loc) - 1 and isinstance(current, Mapping) and isinstance(part, str):
            out.append(part)
    return tuple(out)


def _file_order(problem: Problem) -> tuple[bool, int, int]:
    return (problem.line is None, problem.line or 0, problem.column or 0)


def _joined(outer: str, inner: str) -> str:
    if not outer or not inner:
        return outer or inner
    return outer + inner if inner.startswith("[") else f"{outer}.{inner}"


Check = Callable[[Any], Iterable[tuple[KeyPath, str]]]
"""Checks across a validated config that its model cannot make with a path (distinct names in a list):
``config -> (path, message)`` per problem."""


class Loading:
    """One load of one document: its plain values, each path's position, the problems found so far.

    ``source`` names the document in messages (``None``: a mapping from no file, so no positions); ``environ``
    (default ``os.environ``) supplies ``${env:VAR}``; ``describe`` words pydantic errors the config's own way;
    ``label`` says what kind of config it is in the :class:`ConfigError`'s heading.
    """

    def __init__(
        self,
        source: str | None = "<string>",
        environ: Mapping[str, str] | None = None,
        *,
        describe: Describe | None = None,
        label: str | None = None,
    ) -> None:
        self.source = source
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.describe = describe
        self.label = label
        self.files: dict[tuple[str, Callable[[Path], Any]], tuple[Any, ConfigError | None]] = {}
        """The files this document names, each loaded once (see :func:`load_once`): by path and loader."""
        self.positions: dict[KeyPath, tuple[int, int]] = {}
        self.root_position: tuple[int, int] | None = None
        """Where the document's value starts (for problems about the document as a whole)."""
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.env_paths: set[KeyPath] = set()
        """Paths whose value came (partly) from the environment: their values are not echoed in messages."""
        self.failed: set[KeyPath] = set()
        """Paths with a problem found while reading the YAML (a bad reference, a bad tag): validation errors under
        them would only repeat it."""
        self.env_typed: dict[KeyPath, Any] = {}
        """Typed values of whole-reference strings (``${env:PORT}`` -> 4317), by path."""
        self.built = 0

    # -- problems

    def position(self, path: KeyPath) -> tuple[int, int] | None:
        """The line and column of ``path``'s key (or list item), else of its nearest parent that has one, else of
        the document."""
        for end in range(len(path), 0, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return self.root_position

    def _problem(self, path: KeyPath, message: str, mark: Any, severity: Literal["error", "warning"]) -> Problem:
        pos = (mark.line + 1, mark.column + 1) if mark is not None else self.position(path)
        line, column = pos if pos is not None else (None, None)
        return Problem(format_path(path), message, self.source, line, column, severity)

    def error(self, path: KeyPath, message: str, mark: Any = None) -> None:
        """Record a problem at ``path`` (at ``mark``, a YAML mark, when given; else at the path's position)."""
        self.problems.append(self._problem(path, message, mark, "error"))

    def warn(self, path: KeyPath, message: str) -> None:
        """Record a warning at ``path``: reported, but the config is used."""
        self.warnings.append(self._problem(path, message, None, "warning"))

    def fail(self) -> ConfigError:
        """The error holding every problem found, in file order (problems of other files after this file's; those of
        a file named twice once)."""
        ordered = sorted(
            dict.fromkeys(self.problems), key=lambda p: (p.source != self.source, p.source or "", _file_order(p))
        )
        return ConfigError(ordered, source=self.source, warnings=self.warnings, label=self.label)

    # -- YAML to plain values

    def parse(self, text: str) -> Any:
        """The document's plain value (``None`` for an empty document); raises :class:`ConfigError` for YAML syntax
        errors, characters YAML does not allow, several documents and alias expansion beyond bounds."""
        loader: _Loader | None = None
        nodes: list[Node] = []
        try:
            loader = _Loader(text)
            while loader.check_node():
                node = loader.get_node()
                if node is not None:
                    nodes.append(node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            message = f"YAML syntax error: {exc.problem or exc.context or 'invalid YAML'}"
            context = exc.context_mark
            if exc.problem and exc.context:
                started = ""
                if context is not None and context is not mark:
                    started = f" that starts at line {context.line + 1}, column {context.column + 1}"
                message += f" ({exc.context}{started})"
            self.error((), message, mark)
            raise self.fail() from None
        except yaml.YAMLError as exc:  # ReaderError: characters YAML does not allow
            position = getattr(exc, "position", None)
            found = None
            if isinstance(position, int):
                line = text.count("\n", 0, position)
                found = yaml.Mark("", position, line, position - (text.rfind("\n", 0, position) + 1), None, 0)
            reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
            character = getattr(exc, "character", None)
            shown = f" (#x{character:04x})" if isinstance(character, int) else ""
            self.error((), f"YAML error: {reason}{shown}", found)
            raise self.fail() from None
        finally:
            if loader is not None:
                loader.dispose()
        if not nodes:
            return None
        if len(nodes) > 1:
            self.error((), "only one YAML document is allowed (found a second one)", nodes[1].start_mark)
            raise self.fail()
        self.root_position = (nodes[0].start_mark.line + 1, nodes[0].start_mark.column + 1)
        try:
            return self._build(nodes[0], (), set())
        except _TooLarge:
            self.error((), f"the document expands (through YAML aliases) to more than {_MAX_NODES} values")
            raise self.fail() from None

    def _build(self, node: Node, path: KeyPath, ancestors: set[int]) -> Any:
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
                return self._expand(value, path)
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
                items.append(self._build(item, (*path, index), inner))
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
                was = first[key]
                self.error(
                    key_path,
                    f"duplicate key {key!r} (first defined at line {was.line + 1}, column {was.column + 1}); "
                    "the second is not used",
                    key_node.start_mark,
                )
                continue
            first[key] = key_node.start_mark
            self.positions[key_path] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = self._build(value_node, key_path, inner)
        for key, mark in first.items():  # merged-in mappings record their own positions; explicit keys win
            explicit = (*path, key)
            self.positions[explicit] = (mark.line + 1, mark.column + 1)
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def _merge_sources(self, node: Node, path: KeyPath, ancestors: set[int]) -> list[dict[str, Any]]:
        nodes = node.value if isinstance(node, SequenceNode) else [node]
        sources = []
        for each in nodes:
            if not isinstance(each, MappingNode):
                self.error(path, "a '<<' merge key needs a mapping or a list of mappings", each.start_mark)
                continue
            value = self._build(each, path, ancestors)
            if isinstance(value, dict):
                sources.append(value)
        return sources

    # -- ${env:VAR}

    def _expand(self, text: str, path: KeyPath) -> str:
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

    def _lookup(self, reference: str, path: KeyPath) -> str | None:
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

    # -- the whole document

    def load(
        self,
        data: Any,
        model: type[M],
        *,
        base: KeyPath = (),
        context: Mapping[str, Any] | None = None,
        check: Check | None = None,
    ) -> M:
        """``data``, the document's plain value (``None``: empty, every default), validated by ``model``; raises
        :class:`ConfigError` with every problem found, those recorded while parsing included."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            mark = self.root_position
            where = yaml.Mark("", 0, mark[0] - 1, mark[1] - 1, None, 0) if mark is not None else None
            self.error(base, f"the top level must be a mapping, not {kind_of(data)}", where)
            raise self.fail()
        config = self.validate(model, data, base, dict(context or {}))
        if config is not None and check is not None:
            for path, message in check(config):
                self.error((*base, *path), message)
        if config is None or self.problems:
            raise self.fail()
        return config

    # -- pydantic errors to YAML paths

    def validate(self, model: type[M], raw: Any, base: KeyPath = (), context: Any = None) -> M | None:
        """``raw`` validated by ``model``, or None with its problems recorded under ``base``.

        A setting given as exactly one ``${env:VAR}`` reference is a string first (so a string setting gets the
        variable's text as it is); if the setting refuses that string and the text reads as a YAML number, boolean
        or null, that value is tried instead: the setting's type decides, as in the OTel Collector.
        """
        if context is None or isinstance(context, Mapping):
            context = {"loaded_files": self.files, **(context or {})}
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
        self._validation_errors(error, base, raw, model)
        return None

    def _validation_errors(self, exc: pydantic.ValidationError, base: KeyPath, raw: Any, model: type[M]) -> None:
        for err in exc.errors(include_url=False):
            relative = _data_path(err["loc"], raw)
            path = (*base, *relative)
            if any(path[:end] in self.failed for end in range(len(path) + 1)):
                continue
            nested = (err.get("ctx") or {}).get("error")
            if isinstance(nested, ConfigError):
                # A validator that loaded another config (a rules file): its problems keep their own file and
                # positions; those of a mapping from no file are placed here.
                here = self._problem(path, "", None, "error")
                for problem in nested.problems:
                    if problem.source is None:
                        problem = replace(here, path=_joined(here.path, problem.path), message=problem.message)
                    elif problem.line is None and not problem.path:  # the other file unreadable: said where named
                        problem = replace(here, message=str(problem))
                    self.problems.append(problem)
                continue
            if path in self.env_paths:
                err = {**err, "input": HIDDEN}
            message = self.describe(err, model, relative) if self.describe is not None else None
            self.error(path, message if message is not None else _default_message(err, model, relative))


# --------------------------------------------------------------------------------------------------------------------
# Loading a whole document into one model


def read_config_file(
    path: str | os.PathLike[str],
    *,
    what: str = "config file",
    label: str | None = None,
) -> str:
    """The text of the UTF-8 file at ``path``; a :class:`ConfigError` naming the file when it cannot be read or is
    not UTF-8."""
    source = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        problem = Problem("", f"cannot read the {what}: {exc.strerror or exc}", source)
        raise ConfigError([problem], source=source, label=label) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problem = Problem("", f"the file is not valid UTF-8 (byte {exc.start})", source, line)
        raise ConfigError([problem], source=source, label=label) from None


def load_text(
    text: str,
    model: type[M],
    *,
    source: str = "<string>",
    config_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    context: Mapping[str, Any] | None = None,
    base: KeyPath = (),
    label: str | None = None,
    describe: Describe | None = None,
    check: Check | None = None,
) -> M:
    """``text`` (one YAML document, a mapping; empty means every default) validated by ``model``.

    Validators get ``info.context`` with ``config_dir`` (see :func:`relative_to_config`), ``source`` and the given
    ``context``; ``base`` is put before every path (the document's place in a larger config). Raises
    :class:`ConfigError` with every problem found, headed by ``label`` (``"gate config"``) when given.
    """
    loading = Loading(source, environ, describe=describe, label=label)
    data = loading.parse(text)
    full = {"config_dir": None if config_dir is None else Path(config_dir), "source": source, **(context or {})}
    return loading.load(data, model, base=base, context=full, check=check)


def load_file(
    path: str | os.PathLike[str],
    model: type[M],
    *,
    what: str = "config file",
    environ: Mapping[str, str] | None = None,
    context: Mapping[str, Any] | None = None,
    base: KeyPath = (),
    label: str | None = None,
    describe: Describe | None = None,
    check: Check | None = None,
) -> M:
    """The UTF-8 YAML file at ``path`` validated by ``model`` (see :func:`load_text`); relative file names in it
    resolve against its directory. Raises :class:`ConfigError` naming the file, line and column of every problem."""
    text = read_config_file(path, what=what, label=label)
    return load_text(
        text,
        model,
        source=os.fspath(path),
        config_dir=Path(path).resolve().parent,
        environ=environ,
        context=context,
        base=base,
        label=label,
        describe=describe,
        check=check,
    )


def load_data(
    data: Any,
    model: type[M],
    *,
    base: KeyPath = (),
    context: Mapping[str, Any] | None = None,
    label: str | None = None,
    describe: Describe | None = None,
    check: Check | None = None,
) -> M:
    """An already parsed mapping validated by ``model``, with the loader's messages (paths, no positions)."""
    loading = Loading(None, {}, describe=describe, label=label)
    full = {"config_dir": None, "source": None, **(context or {})}
    return loading.load(data, model, base=base, context=full, check=check)
