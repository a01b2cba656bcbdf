"""What a gate run says, and the decision: a table in the terminal, JUnit XML, a JSON report (also the baseline's
format), a Markdown summary for a pull-request comment, and the baseline comparison.

The decision (:func:`decide`): exit 3 when the target (or the judge's endpoint) failed; else exit 1 when a case
failed or errored, the aggregate is under its threshold, a case that passed in the baseline does not pass now, or a
baseline case is missing; else 0. Outputs carry ids, statuses, scores and the scorers' short reasons, never the
cases' messages or the target's outputs. Behaviour: docs/datasets.md ("The gate").
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from spanguard import __version__
from spanguard.review.evalgate.runner import CaseStatus, RunResult

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_TARGET_FAILED",
    "EXIT_USAGE",
    "REPORT_VERSION",
    "Baseline",
    "BaselineError",
    "GateVerdict",
    "decide",
    "junit_xml",
    "load_baseline",
    "markdown_summary",
    "render_table",
    "report_data",
    "write_text",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_TARGET_FAILED: Final = 3
REPORT_VERSION: Final = 1
_SUMMARY_ROWS: Final = 50
_SUMMARY_REASON: Final = 200
_STYLES: Final = {
    CaseStatus.PASSED: "green",
    CaseStatus.FAILED: "red",
    CaseStatus.ERROR: "red",
    CaseStatus.TARGET_FAILED: "bold red",
    CaseStatus.PENDING_HUMAN: "yellow",
    CaseStatus.NOT_RUN: "dim",
}
_ICONS: Final = {
    CaseStatus.PASSED: "✅",
    CaseStatus.FAILED: "❌",
    CaseStatus.ERROR: "⚠️",
    CaseStatus.TARGET_FAILED: "💥",
    CaseStatus.PENDING_HUMAN: "🧑",
    CaseStatus.NOT_RUN: "⏭️",
}


class BaselineError(ValueError):
    """A baseline that cannot be used (unreadable, not a report, a failing run's report, duplicate ids)."""


class _BaselineCase(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1)
    status: CaseStatus


class _BaselineGate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    passed: bool


class _BaselineReport(BaseModel):
    model_config = ConfigDict(extra="ignore")
    schema_version: Literal[1]
    gate: _BaselineGate
    cases: list[_BaselineCase]


@dataclass(frozen=True)
class Baseline:
    """A passing run's case statuses, by id."""

    path: str
    statuses: dict[str, CaseStatus]


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """The baseline report at ``path`` (a JSON report of a passing run); :class:`BaselineError` otherwise."""
    source = os.fspath(path)
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise BaselineError(f"{source}: cannot read the baseline: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise BaselineError(f"{source}: the baseline is not JSON ({type(exc).__name__})") from None
    try:
        report = _BaselineReport.model_validate(data)
    except pydantic.ValidationError as exc:
        where = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'report'}: {err['msg']}"
            for err in exc.errors(include_url=False)[:5]
        )
        raise BaselineError(f"{source}: not a gate report of version {REPORT_VERSION} ({where})") from None
    if not report.gate.passed:
        raise BaselineError(f"{source}: the report of a failing run cannot be a baseline")
    statuses: dict[str, CaseStatus] = {}
    for case in report.cases:
        if case.id in statuses:
            raise BaselineError(f"{source}: duplicate case id {case.id!r} in the baseline")
        statuses[case.id] = case.status
    return Baseline(source, statuses)


@dataclass
class GateVerdict:
    """The run's decision: the exit code, whether the gate holds, and every reason it does not."""

    exit_code: int
    reasons: list[str] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)
    """Ids of cases that passed in the baseline and do not pass now (failed or errored)."""
    missing: list[str] = field(default_factory=list)
    """Ids of baseline cases the dataset no longer has."""
    baseline: str | None = None

    @property
    def passed(self) -> bool:
        """The gate holds (exit 0)."""
        return self.exit_code == EXIT_OK


def decide(run: RunResult, baseline: Baseline | None = None) -> GateVerdict:
    """The gate's decision on ``run`` (compared with ``baseline`` when given)."""
    verdict = GateVerdict(EXIT_OK, baseline=baseline.path if baseline is not None else None)
    now = {case.id: case.status for case in run.cases}
    if baseline is not None:
        for case_id, before in baseline.statuses.items():
            if case_id not in now:
                verdict.missing.append(case_id)
            elif before is CaseStatus.PASSED and now[case_id] in (CaseStatus.FAILED, CaseStatus.ERROR):
                verdict.regressions.append(case_id)
    broken = run.count(CaseStatus.TARGET_FAILED)
    if broken:
        verdict.exit_code = EXIT_TARGET_FAILED
        first = run.target_error or next(c.reason for c in run.cases if c.status is CaseStatus.TARGET_FAILED)
        verdict.reasons.append(f"the target failed on {broken} case{'s' if broken != 1 else ''}: {first}")
        not_run = run.count(CaseStatus.NOT_RUN)
        if not_run:
            verdict.reasons.append(f"{not_run} case{'s' if not_run != 1 else ''} not run")
    failed, errors = run.count(CaseStatus.FAILED), run.count(CaseStatus.ERROR)
    if failed:
        verdict.reasons.append(f"{failed} case{'s' if failed != 1 else ''} failed")
    if errors:
        verdict.reasons.append(f"{errors} case{'s' if errors != 1 else ''} could not be scored (scorer errors)")
    threshold = run.config.threshold
    aggregate = run.aggregate
    if threshold > 0 and not broken:
        if aggregate is None:
            verdict.reasons.append(f"no settled case to measure the aggregate against its threshold {threshold:g}")
        elif aggregate < threshold:
            verdict.reasons.append(f"the aggregate score {aggregate:.3f} is under the threshold {threshold:g}")
    if verdict.regressions:
        verdict.reasons.append(
            f"{len(verdict.regressions)} case{'s' if len(verdict.regressions) != 1 else ''} passed in the baseline "
            f"and do not now: {', '.join(verdict.regressions[:10])}"
        )
    if verdict.missing:
        verdict.reasons.append(
            f"{len(verdict.missing)} baseline case{'s' if len(verdict.missing) != 1 else ''} missing from the "
            f"dataset: {', '.join(verdict.missing[:10])}"
        )
    if verdict.reasons and verdict.exit_code == EXIT_OK:
        verdict.exit_code = EXIT_FAILED
    return verdict


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _counts(run: RunResult) -> dict[str, int]:
    return {status.value: run.count(status) for status in CaseStatus}


def report_data(run: RunResult, verdict: GateVerdict) -> dict[str, Any]:
    """The JSON report: the run, every case and scorer, and the decision (also what ``--baseline`` reads)."""
    regressed = set(verdict.regressions)
    return {
        "schema_version": REPORT_VERSION,
        "spanguard_version": __version__,
        "started_at": _iso(run.started_at),
        "duration_s": round(run.duration_s, 3),
        "dataset": {"path": run.dataset.path, "sha256": run.dataset.sha256, "cases": len(run.dataset.cases)},
        "target": run.target,
        "gate": {
            "passed": verdict.passed,
            "exit_code": verdict.exit_code,
            "reasons": verdict.reasons,
            "baseline": verdict.baseline,
            "regressions": verdict.regressions,
            "missing": verdict.missing,
        },
        "threshold": run.config.threshold,
        "aggregate": run.aggregate,
        "counts": _counts(run),
        "cost": {"target_calls": run.target_calls, "scorer_calls": run.scorer_calls, "cache_hits": run.cache_hits},
        "trials": run.config.trials,
        "cases": [
            {
                "id": case.id,
                "status": case.status.value,
                "score": case.score,
                "reason": case.reason,
                "regressed": case.id in regressed,
                "line": case.line,
                "tags": list(case.tags),
                "duration_s": round(case.duration_s, 4),
                "output_sha256": case.output_sha256,
                "scorers": [
                    {
                        "name": s.name,
                        "weight": s.weight,
                        "threshold": s.threshold,
                        "score": s.score,
                        "passed": s.passed,
                        "reason": s.reason,
                        "cached": s.cached,
                        "skipped": s.skipped,
                        "trials": list(s.trials),
                        "agreement": s.agreement,
                        "error": s.error,
                    }
                    for s in case.scorers
                ],
            }
            for case in run.cases
        ],
    }


def _scorer_lines(case: Any) -> str:
    lines = []
    for s in case.scorers:
        verdict = (
            "error" if s.error else "skipped" if s.skipped else {True: "pass", False: "fail", None: "abstain"}[s.passed]
        )
        extra = f", agreement {s.agreement:.2f} over {len(s.trials)} trials" if s.trials else ""
        lines.append(f"{s.name}: {verdict} (score {s.score:.3f}{extra}): {s.error or s.reason}")
    return "\n".join(lines)


def junit_xml(run: RunResult, verdict: GateVerdict) -> str:
    """The run as JUnit XML: one ``testcase`` per case (failure, error or skipped), plus one per missing baseline
    case and one for the aggregate when it is under its threshold."""
    suite_name = run.dataset.name
    classname = f"spanguard.gate.{suite_name}"
    regressed = set(verdict.regressions)
    cases: list[ET.Element] = []
    tallies = {"failures": 0, "errors": 0, "skipped": 0}

    def testcase(name: str, seconds: float) -> ET.Element:
        element = ET.Element("testcase", {"name": name, "classname": classname, "time": f"{seconds:.3f}"})
        cases.append(element)
        return element

    def child(parent: ET.Element, tag: str, message: str, kind: str = "", text: str = "") -> None:
        tallies[{"failure": "failures", "error": "errors", "skipped": "skipped"}[tag]] += 1
        element = ET.SubElement(
            parent, tag, {"message": message, "type": kind} if tag != "skipped" else {"message": message}
        )
        if text:
            element.text = text

    for case in run.cases:
        element = testcase(case.id, case.duration_s)
        details = _scorer_lines(case)
        if case.status is CaseStatus.FAILED:
            kind = "regression" if case.id in regressed else "failed"
            message = f"passed in the baseline, fails now: {case.reason}" if case.id in regressed else case.reason
            child(element, "failure", message, kind, details)
        elif case.status is CaseStatus.ERROR:
            child(element, "error", case.reason, "scorer_error", details)
        elif case.status is CaseStatus.TARGET_FAILED:
            child(element, "error", case.reason, "target_failed")
        elif case.status is CaseStatus.PENDING_HUMAN:
            child(element, "skipped", f"pending human: {case.reason}")
        elif case.status is CaseStatus.NOT_RUN:
            child(element, "skipped", case.reason)
        if case.status is CaseStatus.PASSED and details:
            ET.SubElement(element, "system-out").text = details
    for case_id in verdict.missing:
        child(testcase(case_id, 0.0), "failure", "in the baseline, missing from the dataset", "missing")
    aggregate, threshold = run.aggregate, run.config.threshold
    if threshold > 0 and (aggregate is None or aggregate < threshold):
        shown = "no settled case" if aggregate is None else f"{aggregate:.3f}"
        child(
            testcase("aggregate", 0.0), "failure", f"aggregate {shown} under the threshold {threshold:g}", "threshold"
        )
    attributes = {
        "name": suite_name,
        "tests": str(len(cases)),
        "failures": str(tallies["failures"]),
        "errors": str(tallies["errors"]),
        "skipped": str(tallies["skipped"]),
        "time": f"{run.duration_s:.3f}",
        "timestamp": _iso(run.started_at).removesuffix("Z"),
    }
    root = ET.Element(
        "testsuites", {k: v for k, v in attributes.items() if k != "timestamp"} | {"name": "spanguard gate"}
    )
    suite = ET.SubElement(root, "testsuite", attributes)
    properties = ET.SubElement(suite, "properties")
    for name, value in (("target", run.target), ("dataset", run.dataset.path), ("dataset_sha256", run.dataset.sha256)):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    suite.extend(cases)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _cell(text: Any, limit: int = _SUMMARY_REASON) -> str:
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("`", "'")


def markdown_summary(run: RunResult, verdict: GateVerdict) -> str:
    """A Markdown summary for a pull-request comment: the decision, the counts, and each case that did not pass."""
    head = "✅ spanguard gate passed" if verdict.passed else f"❌ spanguard gate failed (exit {verdict.exit_code})"
    counts = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in _counts(run).items() if n)
    aggregate = "n/a" if run.aggregate is None else f"{run.aggregate:.3f}"
    lines = [
        f"### {head}",
        "",
        f"**{_cell(Path(run.dataset.path).name)}** · target `{_cell(run.target)}` · {len(run.cases)} cases: {counts}",
        f"· aggregate {aggregate} (threshold {run.config.threshold:g})",
        "",
    ]
    lines += [f"- {_cell(reason)}" for reason in verdict.reasons]
    regressed = set(verdict.regressions)
    shown = [case for case in run.cases if case.status is not CaseStatus.PASSED]
    if shown or verdict.missing:
        lines += ["", "| case | status | score | reason |", "|---|---|---|---|"]
        rows = [
            (
                f"`{_cell(case.id)}`",
                f"{_ICONS[case.status]} {case.status.value}" + (" (regression)" if case.id in regressed else ""),
                "" if case.score is None else f"{case.score:.2f}",
                _cell(case.reason),
            )
            for case in shown
        ]
        rows += [
            (f"`{_cell(case_id)}`", "❌ missing", "", "in the baseline, not in the dataset")
            for case_id in verdict.missing
        ]
        for row in rows[:_SUMMARY_ROWS]:
            lines.append("| " + " | ".join(row) + " |")
        if len(rows) > _SUMMARY_ROWS:
            lines.append(f"\n…and {len(rows) - _SUMMARY_ROWS} more (see the JSON report)")
    cost = f"{run.target_calls} target calls, {run.scorer_calls} scorer calls, {run.cache_hits} cached scores"
    lines += ["", f"<sub>spanguard {__version__} · {cost} · {run.duration_s:.1f} s</sub>", ""]
    return "\n".join(lines)


def render_table(run: RunResult, verdict: GateVerdict, console: Any = None) -> None:
    """The run as a rich table on the terminal (stdout), then the decision."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    regressed = set(verdict.regressions)
    table = Table(title=escape(f"spanguard gate: {run.dataset.path} → {run.target}"), title_justify="left")
    table.add_column("case", overflow="fold")
    table.add_column("status")
    table.add_column("score", justify="right")
    table.add_column("reason", overflow="fold", max_width=80)
    for case in run.cases:
        status = case.status.value + (" (regression)" if case.id in regressed else "")
        score = "" if case.score is None else f"{case.score:.2f}"
        table.add_row(escape(case.id), f"[{_STYLES[case.status]}]{status}[/]", score, escape(case.reason))
    for case_id in verdict.missing:
        table.add_row(escape(case_id), "[red]missing[/]", "", "in the baseline, not in the dataset")
    console.print(table, markup=True, highlight=False)
    counts = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in _counts(run).items() if n)
    aggregate = "n/a" if run.aggregate is None else f"{run.aggregate:.3f}"
    console.print(
        f"{len(run.cases)} cases: {counts}; aggregate {aggregate} (threshold {run.config.threshold:g})", highlight=False
    )
    if verdict.passed:
        console.print("[green]gate passed[/]")
    else:
        console.print(f"[red]gate failed (exit {verdict.exit_code})[/]: " + escape("; ".join(verdict.reasons)))


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (its folder created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
