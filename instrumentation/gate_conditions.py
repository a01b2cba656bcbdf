"""The conditions of an approval-gate policy (``amount > 100``, ``len(recipients) > 50``): a small expression
language over a tool call's arguments, parsed with :mod:`ast` and evaluated node by node from a fixed list, never
with ``eval``. An expression that does not parse is refused at load; one that cannot be evaluated on a call's
arguments raises :class:`ConditionError`, and the gate asks a person. The language: docs/gates.md ("Conditions").
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Condition", "ConditionError"]

MAX_LENGTH: Final = 500  # characters of one condition
MAX_DEPTH: Final = 32  # nesting of its syntax tree
MAX_ITEMS: Final = 10_000  # elements a value may have to be measured or searched


class ConditionError(ValueError):
    """A condition that does not parse, or that cannot be evaluated on a call's arguments."""


_COMPARE: Final[Mapping[type, Callable[[Any, Any], bool]]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: _contains(b, a),
    ast.NotIn: lambda a, b: not _contains(b, a),
}
_ARITHMETIC: Final[Mapping[type, Callable[[Any, Any], Any]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}


def _length(value: Any) -> int:
    if isinstance(value, (str, list, tuple, dict)):
        return len(value)
    raise ConditionError(f"len() of {type(value).__name__}")


def _text(name: str, method: Callable[[str], Any]) -> Callable[[Any], Any]:
    def call(value: Any) -> Any:
        if not isinstance(value, str):
            raise ConditionError(f"{name}() of {type(value).__name__}")
        return method(value)

    return call


_FUNCTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    "len": _length,
    "lower": _text("lower", str.lower),
    "upper": _text("upper", str.upper),
    "abs": lambda value: abs(_number(value)),
}
_CONSTANTS: Final = {"true": True, "false": False, "null": None}


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConditionError(f"a number was needed, got {type(value).__name__}")
    return value


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        if not isinstance(item, str):
            raise ConditionError(f"'in' a string needs a string, got {type(item).__name__}")
        return item in container
    if isinstance(container, (list, tuple, dict)):
        if len(container) > MAX_ITEMS:
            raise ConditionError(f"a value of more than {MAX_ITEMS} items")
        return item in container
    raise ConditionError(f"'in' {type(container).__name__}")


@dataclass(frozen=True)
class Condition:
    """One parsed condition; :meth:`evaluate` it on a call's arguments."""

    text: str
    _tree: ast.expr

    @classmethod
    def parse(cls, text: str) -> Condition:
        """Parse and check a condition, or raise :class:`ConditionError` saying what is wrong and where."""
        if not isinstance(text, str) or not text.strip():
            raise ConditionError("a condition must be a non-empty string")
        if len(text) > MAX_LENGTH:
            raise ConditionError(f"a condition is at most {MAX_LENGTH} characters, this one has {len(text)}")
        try:
            tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as error:
            raise ConditionError(f"does not parse at column {error.offset}: {error.msg}") from None
        _check(tree, 0)
        return cls(text, tree)

    def evaluate(self, arguments: Mapping[str, Any]) -> bool:
        """Whether the condition holds for ``arguments``; :class:`ConditionError` when it cannot be told."""
        try:
            result = _evaluate(self._tree, arguments)
        except ConditionError:
            raise
        except (ArithmeticError, TypeError, ValueError, RecursionError) as error:
            raise ConditionError(f"{self.text!r}: {type(error).__name__}: {error}") from None
        if not isinstance(result, bool):
            raise ConditionError(f"{self.text!r} gives a {type(result).__name__}, not true or false")
        return result


_ALLOWED: Final = (
    ast.BoolOp,
    ast.UnaryOp,
    ast.BinOp,
    ast.Compare,
    ast.Call,
    ast.Name,
    ast.Attribute,
    ast.Subscript,
    ast.Constant,
    ast.List,
    ast.Tuple,
)


def _check(node: ast.AST, depth: int) -> None:
    """Refuse at load anything the evaluator would not do (a call of anything but the listed functions, ``**``, a
    lambda, a comprehension, a name starting with ``_``)."""
    if depth > MAX_DEPTH:
        raise ConditionError(f"nested deeper than {MAX_DEPTH}")
    where = f" at column {getattr(node, 'col_offset', 0) + 1}"
    if not isinstance(node, _ALLOWED):
        raise ConditionError(f"{type(node).__name__} is not allowed{where}")
    if isinstance(node, ast.BinOp) and type(node.op) not in _ARITHMETIC:
        raise ConditionError(f"operator {type(node.op).__name__} is not allowed{where}")
    if isinstance(node, ast.UnaryOp) and not isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
        raise ConditionError(f"operator {type(node.op).__name__} is not allowed{where}")
    if isinstance(node, ast.Compare) and any(type(op) not in _COMPARE for op in node.ops):
        raise ConditionError(f"comparison {type(node.ops[0]).__name__} is not allowed{where}")
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS) or node.keywords or len(node.args) != 1:
            raise ConditionError(f"only {', '.join(sorted(_FUNCTIONS))} of one value may be called{where}")
        _check(node.args[0], depth + 1)
        return
    if isinstance(node, ast.Name) and node.id.startswith("_"):
        raise ConditionError(f"name {node.id!r} is not allowed{where}")
    if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
        raise ConditionError(f"field {node.attr!r} is not allowed{where}")
    if isinstance(node, ast.Constant) and not isinstance(node.value, (str, int, float, bool, type(None))):
        raise ConditionError(f"constant {node.value!r} is not allowed{where}")
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.expr_context, ast.boolop, ast.operator, ast.unaryop, ast.cmpop)):
            continue
        _check(child, depth + 1)


def _evaluate(node: ast.expr, arguments: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in arguments:
            return arguments[node.id]
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ConditionError(f"no argument {node.id!r}")
    if isinstance(node, ast.Attribute):  # customer.tier: a field of an object argument
        return _field(_evaluate(node.value, arguments), node.attr)
    if isinstance(node, ast.Subscript):  # items[0], customer["tier"]
        return _field(_evaluate(node.value, arguments), _evaluate(node.slice, arguments))
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_evaluate(item, arguments) for item in node.elts]
    if isinstance(node, ast.BoolOp):
        values = (_truth(_evaluate(value, arguments)) for value in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, arguments)
        if isinstance(node.op, ast.Not):
            return not _truth(operand)
        return -_number(operand) if isinstance(node.op, ast.USub) else _number(operand)
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, arguments), _evaluate(node.right, arguments)
        if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
            return left + right
        result = _ARITHMETIC[type(node.op)](_number(left), _number(right))
        if isinstance(result, float) and not math.isfinite(result):
            raise ConditionError("a number that is not finite")
        return result
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, arguments)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, arguments)
            if type(op) in (ast.Lt, ast.LtE, ast.Gt, ast.GtE) and not _comparable(left, right):
                raise ConditionError(f"cannot order {type(left).__name__} and {type(right).__name__}")
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return _FUNCTIONS[node.func.id](_evaluate(node.args[0], arguments))
    raise ConditionError(f"{type(node).__name__} is not allowed")  # _check refused it already


def _field(value: Any, key: Any) -> Any:
    if isinstance(value, Mapping):
        if key in value:
            return value[key]
        raise ConditionError(f"no field {key!r}")
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and isinstance(key, int)
        and not isinstance(key, bool)
    ):
        if -len(value) <= key < len(value):
            return value[key]
        raise ConditionError(f"no item {key}")
    raise ConditionError(f"{type(value).__name__} has no field {key!r}")


def _truth(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ConditionError(f"'and', 'or' and 'not' need true or false, got {type(value).__name__}")


def _comparable(left: Any, right: Any) -> bool:
    numbers = (int, float)
    if isinstance(left, bool) or isinstance(right, bool):
        return False
    return (isinstance(left, numbers) and isinstance(right, numbers)) or (
        isinstance(left, str) and isinstance(right, str)
    )
