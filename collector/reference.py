"""The generated part of docs/collector-config.md: one table of keys, defaults and meanings per built-in component.

Each component's block lies between ``<!-- generated: <kind> <type> -->`` and ``<!-- end generated -->``; text
outside the blocks is written by hand. What a block holds, and the ``--check`` mode ``make test`` runs, are
docs/collector-config.md ("Components").
"""

from __future__ import annotations

import ast
import enum
import inspect
import itertools
import re
import sys
import textwrap
import types
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from spanguard.collector.component import KINDS, Factory
from spanguard.durations import parse_duration

__all__ = ["main", "render_block", "update"]

DEFAULT_TARGET: Final = "docs/collector-config.md"
_BEGIN: Final = re.compile(r"<!-- generated: (\w+) (\w+) -->\n.*?<!-- end generated -->\n", re.S)
_SECTION: Final = "## Components\n"
_EXPANDED_PACKAGES: Final = ("spanguard.collector.", "spanguard.exporters.")
_LIST_SHOWN: Final = 4


# ---------------------------------------------------------------------------------------------------- model reading


@cache
def _attribute_docstrings(cls: type) -> Mapping[str, str]:
    """The string literal right under each annotated field of ``cls``'s own body (its bases not included)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    found: dict[str, str] = {}
    for statement, following in itertools.pairwise(body):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[statement.target.id] = inspect.cleandoc(following.value.value)
    return found


def _field_doc(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    if info.description:
        return info.description
    for cls in model.__mro__:
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls is not BaseModel:
            doc = _attribute_docstrings(cls).get(name)
            if doc:
                return doc
    return ""


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The settings model a field holds directly (``Model`` or ``Model | None``), else None (a list or a dict of
    models is one value, not settings keys)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            return args[0]
    return None


def _expanded(model: type[BaseModel]) -> bool:
    return model.__module__.startswith(_EXPANDED_PACKAGES)


# ---------------------------------------------------------------------------------------------------- text


def _markdown(text: str) -> str:
    """rST inline literals as Markdown, one line, pipes escaped."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`")
    text = " ".join(text.split())
    return text.replace("|", "\\|")


def _sentence(text: str) -> str:
    """``text`` as a whole sentence: capitalised (unless it starts with code), ending with a full stop."""
    text = _markdown(text)
    if not text:
        return ""
    if text[0].isalpha():
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", ":")) else text + "."


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def _value(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return _code("true" if value else "false")
    if isinstance(value, str):
        return _code(value) if value else '`""`'
    if isinstance(value, float) and value.is_integer():
        return _code(str(int(value)))
    if isinstance(value, (int, float)):
        return _code(str(value))
    if isinstance(value, BaseModel):
        return "see its keys"
    if isinstance(value, Mapping):
        if not value:
            return "`{}`"
        shown = [f"{_code(str(k))}: {_value(v)}" for k, v in list(value.items())[:_LIST_SHOWN]]
        return ", ".join(shown) + (f", ... ({len(value)} in all)" if len(value) > _LIST_SHOWN else "")
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
        if not items:
            return "`[]`"
        shown = [_value(item) for item in items[:_LIST_SHOWN]]
        return ", ".join(shown) + (f", ... ({len(items)} in all)" if len(items) > _LIST_SHOWN else "")
    return _code(str(value))


def _is_duration(info: FieldInfo) -> bool:
    return any(getattr(meta, "func", None) is parse_duration for meta in info.metadata)


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        return _value(info.default_factory())  # type: ignore[call-arg]
    if info.default is PydanticUndefined:
        return "required"
    if _is_duration(info) and isinstance(info.default, (int, float)) and not isinstance(info.default, bool):
        return _code(f"{info.default:g}s")
    return _value(info.default)


def _rows(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str]]:
    for name, info in model.model_fields.items():
        key = info.alias or name
        nested = _nested_model(info.annotation)
        meaning = _field_doc(model, name, info)
        if not meaning and nested is not None:
            meaning = (nested.__doc__ or "").strip().split("\n\n")[0]
        yield f"{prefix}{key}", _default(info), _sentence(meaning)
        if nested is not None and _expanded(nested):
            yield from _rows(nested, f"{prefix}{key}.")


def render_block(factory: Factory) -> str:
    """The generated block of ``factory``'s component: its config model's docstring and its table."""
    model = factory.config_class
    lines = [f"<!-- generated: {factory.kind} {factory.type} -->"]
    doc = inspect.cleandoc(model.__doc__ or "")
    for paragraph in (p for p in doc.split("\n\n") if p.strip()):
        lines += [_markdown(paragraph), ""]
    if factory.kind != "extension":
        lines += [f"Pipelines: {', '.join(factory.signals)}.", ""]
    lines += ["| key | default | meaning |", "|---|---|---|"]
    lines += [f"| `{key}` | {default} | {meaning} |" for key, default, meaning in _rows(model)]
    lines.append("<!-- end generated -->")
    return "\n".join(lines) + "\n"


def undocumented(factory: Factory) -> list[str]:
    """The keys of ``factory``'s config that have no meaning (no description, no docstring)."""
    return [f"{factory.kind} {factory.type}: {key}" for key, _, meaning in _rows(factory.config_class) if not meaning]


# ---------------------------------------------------------------------------------------------------- the file


def _factories() -> list[Factory]:
    from spanguard.collector.components import builtin_factories

    order = {kind: index for index, kind in enumerate(KINDS)}
    return sorted(builtin_factories(), key=lambda f: (order[f.kind], f.type))


def update(text: str, factories: list[Factory] | None = None) -> str:
    """``text`` with every built-in component's block regenerated; a component without a block gets a section at
    the end of "Components", and a block of a component that is gone is removed."""
    known = {(f.kind, f.type): f for f in (factories if factories is not None else _factories())}
    seen: set[tuple[str, str]] = set()

    def replace(match: re.Match[str]) -> str:
        key = (match.group(1), match.group(2))
        if key not in known:
            return ""
        seen.add(key)
        return render_block(known[key])

    text = _BEGIN.sub(replace, text)
    missing = [f for key, f in known.items() if key not in seen]
    if missing:
        if _SECTION not in text:
            text = text.rstrip("\n") + "\n\n" + _SECTION
        start = text.index(_SECTION) + len(_SECTION)
        following = text.find("\n## ", start)
        end = len(text) if following < 0 else following + 1
        added = "".join(f"\n### {f.kind} `{f.type}`\n\n{render_block(f)}" for f in missing)
        text = text[:end].rstrip("\n") + "\n" + added + ("\n" + text[end:] if end < len(text) else "")
    return text


def main(argv: list[str]) -> int:
    """Rewrite the generated blocks of ``argv[0]`` (or check them with ``--check``); 1 when stale."""
    check = "--check" in argv
    paths = [arg for arg in argv if arg != "--check"]
    path = Path(paths[0] if paths else DEFAULT_TARGET)
    text = path.read_text(encoding="utf-8")
    fresh = update(text)
    missing = [key for factory in _factories() for key in undocumented(factory)]
    for key in missing:
        print(f"{path}: no meaning for {key} (give the field a description or a docstring)", file=sys.stderr)
    if check:
        if fresh != text:
            print(f"{path} is stale: run python -m spanguard.collector.reference {path}", file=sys.stderr)
            return 1
        return 0
    if fresh != text:
        path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
