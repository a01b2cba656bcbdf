"""How far the LLM judge can be trusted: its agreement with people on reviewed cases, its calibrated confidence
threshold, and whether it may gate (``spanguard judge-eval``).

Pure metrics and a "Trust or Escalate" calibration (Jung et al., ICLR 2025). Behaviour: docs/datasets.md
("``judge-eval``: may this judge gate?").
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from spanguard.semconv import ReviewOutcome

from .dataset import EvalCase
from .judge import Judge, JudgeAnswerError, JudgeConfig, JudgeUnavailable

__all__ = [
    "Calibration",
    "Confusion",
    "JudgeEvalReport",
    "Labelled",
    "Metrics",
    "add_arguments",
    "calibrate",
    "calibrated_threshold",
    "clopper_pearson_lower",
    "confusion",
    "evaluate_judge",
    "evaluation_report",
    "judge_gate_check",
    "judge_may_gate",
    "labelled",
    "metrics",
    "run",
    "summary",
]

DEFAULT_TARGET: Final = 0.9
DEFAULT_CONFIDENCE: Final = 0.95
DEFAULT_STEP: Final = 0.05
DEFAULT_MIN_KEPT: Final = 100
"""Fewer kept cases are not tested: at 99% true agreement, 2 misses in 50 already fail a 0.9 bound."""


# --------------------------------------------------------------------------------------------------------------------
# Metrics


@dataclass(frozen=True)
class Confusion:
    """Judge against people, "pass" positive: true/false positives and negatives."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    @property
    def n(self) -> int:
        """How many cases."""
        return self.tp + self.fp + self.tn + self.fn


def confusion(pairs: Iterable[tuple[bool, bool]]) -> Confusion:
    """The confusion matrix of ``(human passed, judge passed)`` pairs."""
    tp = fp = tn = fn = 0
    for human, judge in pairs:
        if judge and human:
            tp += 1
        elif judge:
            fp += 1
        elif human:
            fn += 1
        else:
            tn += 1
    return Confusion(tp, fp, tn, fn)


@dataclass(frozen=True)
class Metrics:
    """The judge's agreement with people; ``notes`` say which metric was undefined and taken as 0."""

    confusion: Confusion
    accuracy: float
    balanced_accuracy: float
    precision: float
    recall: float
    mcc: float
    notes: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        """How many labelled cases were judged."""
        return self.confusion.n


def _ratio(num: int, den: int, what: str, notes: list[str]) -> float | None:
    if den == 0:
        notes.append(what)
        return None
    return num / den


def metrics(matrix: Confusion) -> Metrics:
    """Every metric of ``matrix``; an undefined one (a class absent, no prediction of one) is 0 with a note."""
    c = matrix
    notes: list[str] = []
    accuracy = _ratio(c.tp + c.tn, c.n, "accuracy undefined (no cases): taken as 0", notes)
    precision = _ratio(c.tp, c.tp + c.fp, "precision undefined (the judge passed no case): taken as 0", notes)
    recall = _ratio(c.tp, c.tp + c.fn, "recall undefined (people passed no case): taken as 0", notes)
    specificity = _ratio(c.tn, c.tn + c.fp, "specificity undefined (people failed no case)", notes)
    rates = [rate for rate in (recall, specificity) if rate is not None]
    if len(rates) == 1:
        notes.append("balanced accuracy over the one class people used")
    balanced = sum(rates) / len(rates) if rates else 0.0
    denominator = (c.tp + c.fp) * (c.tp + c.fn) * (c.tn + c.fp) * (c.tn + c.fn)
    if denominator == 0:
        notes.append("MCC undefined (a row or column of the confusion matrix is empty): taken as 0")
        mcc = 0.0
    else:
        mcc = (c.tp * c.tn - c.fp * c.fn) / math.sqrt(denominator)
    return Metrics(c, accuracy or 0.0, balanced, precision or 0.0, recall or 0.0, mcc, tuple(notes))


def judge_may_gate(result: Metrics, floor: float) -> tuple[bool, str]:
    """Whether a judge with these metrics may gate: only when its MCC against people reaches ``floor``."""
    if result.n == 0:
        return False, "the judge was measured on no labelled case: it may not gate"
    if result.mcc < floor:
        undefined = [note for note in result.notes if note.startswith("MCC undefined")]
        why = f" ({undefined[0]})" if undefined else ""
        return (
            False,
            f"the judge's MCC against people is {result.mcc:.2f}{why}, below the floor {floor:g}: it may not gate",
        )
    return True, f"the judge's MCC against people is {result.mcc:.2f}, at or above the floor {floor:g}"


# --------------------------------------------------------------------------------------------------------------------
# Calibration


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1 + aa * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def clopper_pearson_lower(successes: int, trials: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """The one-sided Clopper-Pearson lower bound of a binomial proportion at ``confidence``: the p at which seeing
    ``successes`` or more in ``trials`` has probability 1 - confidence."""
    if not 0 <= successes <= trials:
        raise ValueError("successes must be between 0 and trials")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    if successes == 0:
        return 0.0
    alpha = 1 - confidence
    if successes == trials:
        return float(alpha ** (1 / trials))
    lo, hi = 0.0, successes / trials
    for _ in range(100):  # P(X >= k; p) = I_p(k, n - k + 1) grows with p: bisect for alpha
        mid = (lo + hi) / 2
        if _betainc(successes, trials - successes + 1, mid) < alpha:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class Calibration:
    """The judge's confidence threshold: None when no threshold reaches the target (it abstains on every case)."""

    threshold: float | None
    coverage: float
    """The share of labelled cases the judge keeps (decides without people) at the threshold."""
    agreement: float | None
    """Its agreement with people on the kept cases."""
    lower_bound: float | None
    """The Clopper-Pearson lower bound of that agreement at ``confidence``."""
    kept: int
    total: int
    target: float
    confidence: float
    note: str = ""


def calibrate(
    items: Sequence[tuple[float, bool]],
    *,
    target: float = DEFAULT_TARGET,
    confidence: float = DEFAULT_CONFIDENCE,
    step: float = DEFAULT_STEP,
    min_kept: int = DEFAULT_MIN_KEPT,
) -> Calibration:
    """The lowest confidence threshold at which the judge agrees with people (``items``: its confidence and whether
    it agreed, per labelled case) at least ``target`` with ``confidence``.

    Thresholds on a grid (1, 1 - step, ..., 0) are tested from the most confident down and the search ends at the
    first that fails (fixed-sequence testing: the guarantee holds for the one chosen without a correction for the
    many tried). A threshold that keeps fewer than ``min_kept`` cases (or too few for any bound to reach the target)
    is passed over, not tested: on so few cases one disagreement fails the test and would end the search, and the
    choice depends on the confidences only, never on the labels.
    """
    if not 0 < target < 1:
        raise ValueError("target must be between 0 and 1")
    if not 0 < step <= 1:
        raise ValueError("step must be between 0 and 1")
    total = len(items)
    least = math.ceil(math.log(1 - confidence) / math.log(target))  # fewest cases whose bound can reach the target
    least = max(least, min_kept)
    steps = round(1 / step)
    best: Calibration | None = None
    for threshold in (max(0.0, 1 - i * step) for i in range(steps + 1)):
        kept_items = [agreed for conf, agreed in items if conf >= threshold - 1e-12]
        kept, agreed = len(kept_items), sum(kept_items)
        if kept < least:
            continue
        bound = clopper_pearson_lower(agreed, kept, confidence)
        if bound < target:
            break
        best = Calibration(round(threshold, 6), kept / total, agreed / kept, bound, kept, total, target, confidence)
    if best is not None:
        return best
    note = (
        f"no confidence threshold keeps an agreement of at least {target:g} with {confidence:g} confidence: "
        "the judge abstains on every case (people decide)"
    )
    if total < least:
        note += f"; {total} labelled case{'s' if total != 1 else ''} cannot show it, at least {least} are needed"
    return Calibration(None, 0.0, None, None, 0, total, target, confidence, note)


# --------------------------------------------------------------------------------------------------------------------
# Running the judge on labelled cases


@dataclass(frozen=True)
class Labelled:
    """One labelled case as judged: what people said, what the judge said, how sure it was."""

    case_id: str
    human_passed: bool
    judge_passed: bool
    confidence: float


@dataclass
class JudgeEvalReport:
    """The judge measured on a labelled dataset: metrics, calibration, the gating rule's answer, the cases."""

    model: str
    """The judge model measured (a report counts only for that model)."""
    metrics: Metrics
    calibration: Calibration
    may_gate: bool
    reason: str
    judged: list[Labelled] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Ids of the cases the judge gave no usable verdict on (left out of the metrics)."""
    skipped: list[str] = field(default_factory=list)
    """Ids of the cases with no human verdict on an output (nothing to compare)."""

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-able values."""
        data = asdict(self)
        data["metrics"]["n"] = self.metrics.n
        return data


def labelled(case: EvalCase) -> tuple[dict[str, Any], bool] | None:
    """The output people judged and whether they passed it (approve passes; reject and correct fail), or None."""
    if case.original_output is None or case.outcome is None:
        return None
    return case.original_output.model_dump(exclude_none=True), case.outcome == ReviewOutcome.APPROVE


def evaluate_judge(
    cases: Iterable[EvalCase],
    judge: Judge,
    *,
    floor: float | None = None,
    rubric: str | None = None,
    target: float = DEFAULT_TARGET,
    confidence: float = DEFAULT_CONFIDENCE,
    step: float = DEFAULT_STEP,
) -> JudgeEvalReport:
    """The judge run on every labelled case (without the correction: that would give the answer away) and measured;
    :class:`~.judge.JudgeUnavailable` when its endpoint fails."""
    judged: list[Labelled] = []
    errors: list[str] = []
    skipped: list[str] = []
    for case in cases:
        label = labelled(case)
        if label is None:
            skipped.append(case.id)
            continue
        output, human = label
        try:
            verdict = judge.judge(case.messages(), output, rubric=rubric)
        except JudgeAnswerError:
            errors.append(case.id)
            continue
        judged.append(Labelled(case.id, human, verdict.passed, verdict.confidence))
    result = metrics(confusion((item.human_passed, item.judge_passed) for item in judged))
    calibration = calibrate(
        [(item.confidence, item.human_passed == item.judge_passed) for item in judged],
        target=target,
        confidence=confidence,
        step=step,
    )
    may, reason = judge_may_gate(result, judge.config.mcc_floor if floor is None else floor)
    return JudgeEvalReport(judge.config.model, result, calibration, may, reason, judged, errors, skipped)


_UNREAD: Final = object()


def evaluation_report(config: JudgeConfig) -> Any:
    """The ``judge-eval`` report the judge's ``evaluation`` names, parsed (None when it names none; the OSError or
    ValueError when it cannot be read): read once, for :func:`judge_gate_check` and :func:`calibrated_threshold`."""
    if config.evaluation is None:
        return None
    try:
        return json.loads(Path(config.evaluation).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        return exc


def judge_gate_check(config: JudgeConfig, report: Any = _UNREAD) -> tuple[bool, str]:
    """Whether the configured judge may gate, from the ``judge-eval`` report its ``evaluation`` names (``report``:
    that report as :func:`evaluation_report` read it): a judge never measured, measured as another model, or whose
    MCC is under ``mcc_floor`` may not."""
    if config.evaluation is None:
        return False, (
            "the judge has not been measured against people: run spanguard judge-eval --report PATH and set "
            "scorers.judge.evaluation to PATH"
        )
    data = evaluation_report(config) if report is _UNREAD else report
    problem = type(data).__name__ if isinstance(data, Exception) else None
    if problem is None:
        try:
            counts = data["metrics"]["confusion"]
            matrix = Confusion(**{key: int(counts[key]) for key in ("tp", "fp", "tn", "fn")})
            model = data["model"]
        except (ValueError, KeyError, TypeError) as exc:
            problem = type(exc).__name__
    if problem is not None:
        return False, f"the judge's evaluation {config.evaluation} cannot be read ({problem}): it may not gate"
    if model != config.model:
        return False, f"the judge's evaluation measured {model!r}, not {config.model!r}: it may not gate"
    # The metrics are computed again from the counts: a report edited by hand cannot raise its own MCC.
    return judge_may_gate(metrics(matrix), config.mcc_floor)


def calibrated_threshold(config: JudgeConfig, report: Any = _UNREAD) -> float | None:
    """The confidence threshold the judge's ``evaluation`` report calibrated (1.0 when no threshold reached the
    target: the judge then abstains on every case); None when the report has no calibration. ``report``: as for
    :func:`judge_gate_check`."""
    data = evaluation_report(config) if report is _UNREAD else report
    if data is None or isinstance(data, Exception):
        return None
    try:
        calibration = data["calibration"]
        threshold = calibration["threshold"]
    except (KeyError, TypeError):
        return None
    if threshold is None:
        return 1.0
    return float(threshold) if isinstance(threshold, (int, float)) and 0 <= threshold <= 1 else None


# --------------------------------------------------------------------------------------------------------------------
# The command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``judge-eval`` options to ``parser``."""
    parser.add_argument("--dataset", required=True, help="reviewed eval cases (JSON Lines): the human labels")
    parser.add_argument("--config", help="the gate's config (YAML) whose scorers.judge is measured")
    parser.add_argument("--judge", metavar="MODEL", help="the judge model (overrides scorers.judge.model)")
    parser.add_argument("--base-url", help="the judge's OpenAI-compatible endpoint (overrides scorers.judge.base_url)")
    parser.add_argument("--target", type=float, default=DEFAULT_TARGET, help="agreement to guarantee (default 0.9)")
    parser.add_argument(
        "--confidence", type=float, default=DEFAULT_CONFIDENCE, help="confidence of that guarantee (default 0.95)"
    )
    parser.add_argument("--report", metavar="PATH", help="write the JSON report (scorers.judge.evaluation reads it)")


def run(args: argparse.Namespace) -> int:
    """Measure the judge; exit 0 when it may gate, 1 when it may not, 2 for a usage, config or dataset error, 3 when
    its endpoint failed."""
    from .config import load_config
    from .dataset import DatasetError, load_dataset
    from .report import EXIT_FAILED, EXIT_OK, EXIT_TARGET_FAILED, EXIT_USAGE

    try:
        judge_config = load_config(args.config).scorers.judge
        overrides = {k: v for k, v in (("model", args.judge), ("base_url", args.base_url)) if v is not None}
        if judge_config is None:
            if "model" not in overrides:
                raise ValueError("no judge: set scorers.judge in --config, or --judge MODEL")
            judge_config = JudgeConfig.model_validate(overrides)
        elif overrides:
            judge_config = JudgeConfig.model_validate({**judge_config.model_dump(), **overrides})
        if not 0 < args.target < 1 or not 0 < args.confidence < 1:
            raise ValueError("--target and --confidence must be between 0 and 1")
        dataset = load_dataset(args.dataset)
    except (ValueError, DatasetError) as exc:  # ConfigError and pydantic's ValidationError are ValueErrors
        print(f"spanguard judge-eval: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = evaluate_judge(dataset.cases, Judge(judge_config), target=args.target, confidence=args.confidence)
    except JudgeUnavailable as exc:
        print(f"spanguard judge-eval: {exc}", file=sys.stderr)
        return EXIT_TARGET_FAILED
    if args.report:
        Path(args.report).write_text(json.dumps(report.as_dict(), indent=2) + "\n", "utf-8")
    print(summary(report))
    return EXIT_OK if report.may_gate else EXIT_FAILED


def summary(report: JudgeEvalReport) -> str:
    """The report in a few lines for a terminal."""
    m, c, cal = report.metrics, report.metrics.confusion, report.calibration
    lines = [
        f"judge {report.model}: {m.n} labelled cases judged"
        + (f", {len(report.errors)} without a usable verdict" if report.errors else ""),
        f"  confusion (pass positive): tp {c.tp}  fp {c.fp}  tn {c.tn}  fn {c.fn}",
        f"  MCC {m.mcc:.3f}  balanced accuracy {m.balanced_accuracy:.3f}  precision {m.precision:.3f}  "
        f"recall {m.recall:.3f}",
        *(f"  note: {note}" for note in m.notes),
    ]
    if cal.threshold is None:
        lines.append(f"  calibration: {cal.note}")
    else:
        lines.append(
            f"  calibration: confidence_threshold {cal.threshold:g} keeps {cal.coverage:.0%} of cases with agreement "
            f"{cal.agreement:.3f} (at least {cal.lower_bound:.3f} with {cal.confidence:g} confidence)"
        )
    lines.append(f"  {report.reason}")
    return "\n".join(lines)
