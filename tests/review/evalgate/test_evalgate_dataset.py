"""Eval cases read from JSON Lines: the format of docs/datasets.md accepted as exported, every bad line refused with
its number and the field's path, nothing from the file repeated in a message."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from spanguard.review.evalgate.dataset import MAX_PROBLEMS, DatasetError, EvalCase, load_dataset, parse_lines

ROOT = Path(__file__).resolve().parents[3]


def documented_case() -> dict:
    """The example case of docs/datasets.md, as written there."""
    text = (ROOT / "docs" / "datasets.md").read_text("utf-8")
    block = re.search(r"## The eval case.*?```json\n(.*?)```", text, re.S).group(1)
    return json.loads(block.replace('"32 hex"', '"' + "ab" * 16 + '"'))


def problems(*lines: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(DatasetError) as caught:
        parse_lines(list(lines), "cases.jsonl")
    return list(caught.value.problems)


def test_the_documented_case_is_read_as_written():
    data = documented_case()
    ((line, case),) = parse_lines([json.dumps(data)])
    assert line == 1 and case.id == data["id"] and case.outcome == "correct"
    assert case.messages() == data["input"]["messages"]
    assert case.expected_output.content == "Canberra is the capital of Australia."


def test_a_minimal_hand_written_case_needs_only_an_id_and_input():
    ((_, case),) = parse_lines(['{"id": "c1", "input": {"messages": [{"role": "user", "content": "hi"}]}}'])
    assert case.outcome is None and case.assertions == [] and case.schema_version == 1


def test_blank_lines_are_skipped_and_numbers_kept(tmp_path):
    path = tmp_path / "cases.jsonl"
    one = json.dumps({"id": "a", "input": {"messages": [{"role": "user", "content": "x"}]}})
    other = one.replace('"a"', '"b"')
    path.write_text(f"\n{one}\n\n{other}\n", "utf-8")
    dataset = load_dataset(path)
    assert [c.id for c in dataset.cases] == ["a", "b"]
    assert dataset.lines == {"a": 2, "b": 4}
    assert dataset.name == "cases" and len(dataset.sha256) == 64


@pytest.mark.parametrize(
    ("line", "path", "message"),
    [
        ("{", "", "not valid JSON"),
        ("[]", "", "a case must be a JSON object"),
        ('{"input": {"messages": [{"role": "user"}]}}', "id", "required, but missing"),
        ('{"id": "has space", "input": {"messages": [{"role": "user"}]}}', "id", "not a case id"),
        ('{"id": "c", "input": {"messages": []}}', "input.messages", "at least 1"),
        (
            '{"id": "c", "input": {"messages": [{"role": "user", "extra": 1}]}}',
            "input.messages[0].extra",
            "unknown key",
        ),
        ('{"id": "c", "input": {"messages": [{"role": "user"}]}, "outcome": "maybe"}', "outcome", "'approve'"),
        ('{"id": "c", "input": {"messages": [{"role": "user"}]}, "threshold": 1.5}', "threshold", "less than or equal"),
        ('{"id": "c", "input": {"messages": [{"role": "user"}]}, "schema_version": 2}', "schema_version", "reads 1"),
        (
            '{"id": "c", "input": {"messages": [{"role": "user"}]}, "rejected_tool_calls": [{"arguments": {}}]}',
            "rejected_tool_calls[0].name",
            "required",
        ),
        (
            '{"id": "c", "input": {"messages": [{"role": "user"}]}, "assertions": [{"type": "x", "weight": -1}]}',
            "assertions[0].weight",
            "greater than or equal",
        ),
    ],
)
def test_a_bad_line_is_named_with_its_number_and_field(line, path, message):
    good = '{"id": "ok", "input": {"messages": [{"role": "user", "content": "fine"}]}}'
    found = problems(good, line)
    assert found[0][0] == 2 and found[0][1] == path and message in found[0][2], found


def test_a_union_field_is_reported_once():
    found = problems('{"id": "c", "input": {"messages": [{"role": "user", "content": 5}]}}')
    assert [(line, path) for line, path, _ in found] == [(1, "input.messages[0].content")]


def test_values_from_the_file_are_never_repeated_in_messages():
    secret = "alice@example.com"
    error = None
    try:
        parse_lines([json.dumps({"id": secret, "input": {"messages": [{"role": secret, "content": 1}]}})])
    except DatasetError as exc:
        error = str(exc)
    assert error is not None and secret not in error


def test_a_line_that_is_not_utf8_is_named():
    found = problems(b'{"id": "c", "input": "\xff"}')
    assert found[0][0] == 1 and "UTF-8" in found[0][2]


def test_an_empty_dataset_is_refused(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text("\n\n")
    with pytest.raises(DatasetError, match="no cases: the dataset is empty"):
        load_dataset(path)


def test_every_problem_is_reported_up_to_a_cap():
    with pytest.raises(DatasetError) as caught:
        parse_lines(["{"] * (MAX_PROBLEMS + 7), "cases.jsonl")
    assert len(caught.value.problems) == MAX_PROBLEMS and caught.value.more == 7
    assert str(caught.value).endswith("... and 7 more problems")


def test_a_duplicate_id_names_the_first_line():
    line = '{"id": "dup", "input": {"messages": [{"role": "user"}]}}'
    assert problems(line, line, line)[:2] == [
        (2, "id", "duplicate id 'dup' (first on line 1)"),
        (3, "id", "duplicate id 'dup' (first on line 1)"),
    ]


def test_cases_are_frozen():
    ((_, case),) = parse_lines(['{"id": "c", "input": {"messages": [{"role": "user"}]}}'])
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error
        case.id = "other"  # type: ignore[misc]
    assert isinstance(case, EvalCase)
