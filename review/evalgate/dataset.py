"""Eval cases read from JSON Lines and validated (pydantic) before anything runs.

One case per line, in the format of docs/datasets.md ("The eval case"). A line that is not JSON, not an object or not
a valid case is refused with its line number and the field's path; duplicate ids are refused with both lines. Every
problem in the file is reported at once (up to :data:`MAX_PROBLEMS`), and no value from the file is repeated in a
message: cases hold conversations.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from spanguard.semconv import ReviewOutcome
from spanguard.yamlconfig import format_path

__all__ = [
    "CASE_ID_PATTERN",
    "MAX_PROBLEMS",
    "SCHEMA_VERSION",
    "Assertion",
    "CaseInput",
    "CaseSource",
    "Dataset",
    "DatasetError",
    "EvalCase",
    "Message",
    "RejectedToolCall",
    "ToolCall",
    "ToolFunction",
    "error_path",
    "load_dataset",
    "parse_lines",
]

SCHEMA_VERSION: Final = 1
CASE_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"
"""Ids are what JUnit, reports and baselines name a case by: printable, no spaces, at most 200 characters."""
MAX_PROBLEMS: Final = 50
MAX_LINE_BYTES: Final = 16 * 1024 * 1024
"""A longer line is refused rather than parsed: a case is a conversation, not a dump."""

_Strict = ConfigDict(extra="forbid")


class ToolFunction(BaseModel):
    """The function of a tool call: its name and its arguments as a JSON string (the OpenAI chat format)."""

    model_config = _Strict
    name: str = Field(min_length=1)
    arguments: str = "{}"


class ToolCall(BaseModel):
    """An assistant message's tool call, in the OpenAI chat format."""

    model_config = _Strict
    id: str | None = None
    type: Literal["function"] = "function"
    function: ToolFunction


class Message(BaseModel):
    """One chat message in the OpenAI format: role, content (text or content parts), tool calls, tool call id."""

    model_config = _Strict
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def as_openai(self) -> dict[str, Any]:
        """The message as the OpenAI SDK takes it (unset keys left out)."""
        return self.model_dump(exclude_none=True)


class CaseInput(BaseModel):
    """What the target receives: the conversation up to the judged output."""

    model_config = _Strict
    messages: list[Message] = Field(min_length=1)


class RejectedToolCall(BaseModel):
    """A tool call a person refused (name and arguments): the target must not make it again."""

    model_config = _Strict
    name: str = Field(min_length=1)
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class Assertion(BaseModel):
    """A per-case scorer setting written by hand; the scorers check their own keys (``value``, ``pattern``, ...)."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(min_length=1)
    weight: float = Field(1.0, ge=0)
    threshold: float | None = Field(None, ge=0, le=1)


class CaseSource(BaseModel):
    """Where a case came from (provenance only; the gate does not read it, so extra keys are kept, not refused)."""

    model_config = ConfigDict(extra="allow")
    kind: str | None = None
    item_id: int | None = None
    approval_id: str | None = None
    trace_id: str | None = None
    reviewers: list[str] = Field(default_factory=list)
    reviewed_at: str | None = None


class EvalCase(BaseModel):
    """One eval case (docs/datasets.md, "The eval case")."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal[1] = SCHEMA_VERSION
    id: Annotated[str, Field(pattern=CASE_ID_PATTERN)]
    input: CaseInput
    original_output: Message | None = None
    outcome: ReviewOutcome | None = None
    reason: str | None = None
    reason_text: str | None = None
    expected_output: Message | None = None
    rejected_tool_calls: list[RejectedToolCall] = Field(default_factory=list)
    ratings: dict[str, float | int | bool | str | None] = Field(default_factory=dict)
    checklist: dict[str, bool | None] = Field(default_factory=dict)
    model: str | None = None
    tags: list[str] = Field(default_factory=list)
    source: CaseSource | None = None
    assertions: list[Assertion] = Field(default_factory=list)
    threshold: float | None = Field(None, ge=0, le=1)

    def messages(self) -> list[dict[str, Any]]:
        """The input messages as plain OpenAI chat dicts (a fresh copy each call: a target may change them)."""
        return [message.as_openai() for message in self.input.messages]


@dataclass(frozen=True)
class Dataset:
    """The cases of one file, in file order, with the line each came from and the file's SHA-256."""

    path: str
    cases: tuple[EvalCase, ...]
    lines: dict[str, int]
    sha256: str

    @property
    def name(self) -> str:
        """The file's name without its suffix (``cases`` for ``ci/cases.jsonl``)."""
        return Path(self.path).stem or self.path


class DatasetError(ValueError):
    """A dataset that cannot be used: every problem, one line each (``file:line: field: what is wrong``)."""

    def __init__(self, source: str, problems: Sequence[tuple[int | None, str, str]], more: int = 0) -> None:
        self.source = source
        self.problems = tuple(problems)
        """``(line or None, field path, message)`` per problem."""
        self.more = more
        super().__init__(str(self))

    @property
    def first_line(self) -> int | None:
        """The line of the first problem, if it has one."""
        return next((line for line, _, _ in self.problems if line is not None), None)

    def __str__(self) -> str:
        out = []
        for line, path, message in self.problems:
            where = f"{self.source}:{line}" if line is not None else self.source
            out.append(f"{where}: {path}: {message}" if path else f"{where}: {message}")
        if self.more:
            out.append(f"{self.source}: ... and {self.more} more problem{'s' if self.more != 1 else ''}")
        return "\n".join(out)


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required, but missing"
    if kind == "literal_error" and err["loc"] == ("schema_version",):
        return f"unsupported schema_version (this spanguard reads {SCHEMA_VERSION})"
    if kind == "string_pattern_mismatch" and err["loc"] == ("id",):
        return (
            "not a case id: letters, digits and _ . : - only, at most 200 characters, starting with a letter or digit"
        )
    message = str(err["msg"])
    return message.removeprefix("Value error, ")


def error_path(loc: Sequence[str | int]) -> str:
    """A pydantic error location as a field path (``input.messages[0].role``), union member tags left out."""
    # Union member tags ('str', 'list[dict[str,any]]') name no field: leave them out of the path.
    parts = [part for part in loc if isinstance(part, int) or not any(c in part for c in "[]")]
    parts = [part for part in parts if part not in ("str", "int", "float", "bool", "none", "function-after")]
    return format_path(parts)


def parse_lines(lines: Sequence[str | bytes], source: str = "<cases>") -> list[tuple[int, EvalCase]]:
    """The cases in ``lines`` (blank lines skipped) with their 1-based line numbers; :class:`DatasetError` with
    every problem (bad JSON, not an object, invalid fields, duplicate ids, no case at all)."""
    problems: list[tuple[int | None, str, str]] = []
    cases: list[tuple[int, EvalCase]] = []
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            if len(raw) > MAX_LINE_BYTES:
                problems.append((number, "", f"the line is longer than {MAX_LINE_BYTES} bytes"))
                continue
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append((number, "", f"not valid UTF-8 (byte {exc.start} of the line)"))
                continue
        text = raw.strip()
        if not text:
            continue
        try:
            data = json.loads(text)
        except ValueError as exc:
            problems.append(
                (
                    number,
                    "",
                    f"not valid JSON ({getattr(exc, 'msg', 'parse error')}, column {getattr(exc, 'colno', '?')})",
                )
            )
            continue
        if not isinstance(data, dict):
            problems.append((number, "", "a case must be a JSON object"))
            continue
        try:
            case = EvalCase.model_validate(data)
        except pydantic.ValidationError as exc:
            seen: set[str] = set()
            for err in exc.errors(include_url=False, include_input=False):
                path = error_path(err["loc"])
                if path not in seen:  # a union's members each complain about the same field: once is enough
                    seen.add(path)
                    problems.append((number, path, _message(err)))
            continue
        if case.id in first_seen:
            problems.append((number, "id", f"duplicate id {case.id!r} (first on line {first_seen[case.id]})"))
            continue
        first_seen[case.id] = number
        cases.append((number, case))
    if not problems and not cases:
        problems.append((None, "", "no cases: the dataset is empty"))
    if problems:
        raise DatasetError(source, problems[:MAX_PROBLEMS], more=max(0, len(problems) - MAX_PROBLEMS))
    return cases


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """The cases of the JSON Lines file at ``path``; :class:`DatasetError` naming the line and field of every
    problem, or the file when it cannot be read."""
    source = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DatasetError(source, [(None, "", f"cannot read the dataset: {exc.strerror or exc}")]) from None
    parsed = parse_lines(data.splitlines(), source)
    return Dataset(
        path=source,
        cases=tuple(case for _, case in parsed),
        lines={case.id: line for line, case in parsed},
        sha256=hashlib.sha256(data).hexdigest(),
    )
