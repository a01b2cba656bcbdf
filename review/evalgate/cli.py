"""``spanguard gate``: run a target on an eval dataset in CI and exit 0 (all holds), 1 (a case, the aggregate or the
baseline fails), 2 (a usage, config or dataset error: a bad line named with its number) or 3 (the target failed).

Options override ``--config gate.yaml``; outputs (``--junit``, ``--report``, ``--summary``) are written whatever the
decision, ``--write-baseline`` only when the gate holds. Behaviour: docs/datasets.md ("The gate").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

import pydantic

__all__ = ["add_arguments", "run"]

_OVERRIDES = ("target", "model", "threshold", "concurrency", "timeout", "retries", "trials", "cache")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``gate`` options to ``parser``."""
    parser.add_argument("--dataset", required=True, help="the eval cases (JSON Lines, docs/datasets.md)")
    parser.add_argument(
        "--target", help="module:function, path/to/file.py:function, or an OpenAI-compatible URL (with --model)"
    )
    parser.add_argument("--model", help="the model a URL target is asked for")
    parser.add_argument("--threshold", type=float, help="the aggregate threshold: the settled cases' mean score")
    parser.add_argument("--concurrency", type=int, help="target calls at once (default 4)")
    parser.add_argument("--timeout", type=float, help="seconds per target call attempt (default 60)")
    parser.add_argument("--retries", type=int, help="attempts after a failed or timed-out call (default 2)")
    parser.add_argument("--trials", type=int, help="runs of each judged scorer per case (default 1)")
    parser.add_argument("--config", help="the gate's config (YAML): these options' defaults and the scorers' settings")
    parser.add_argument("--cache", help="the score cache file (default .spanguard/gate-cache.json)")
    parser.add_argument("--no-cache", action="store_true", help="score everything again; read and write no cache")
    parser.add_argument("--junit", metavar="PATH", help="write JUnit XML")
    parser.add_argument("--report", metavar="PATH", help="write the JSON report")
    parser.add_argument("--summary", metavar="PATH", help="write a Markdown summary (for a pull-request comment)")
    parser.add_argument("--baseline", metavar="REPORT", help="a passing run's JSON report: no case it passed may fail")
    parser.add_argument("--write-baseline", metavar="PATH", help="write the JSON report here when the gate holds")
    parser.add_argument("--quiet", action="store_true", help="no table: the decision only")
    parser.add_argument(
        "--review-endpoint",
        metavar="URL",
        help="send pending-human cases to this review service (default $SPANGUARD_REVIEW_ENDPOINT)",
    )
    parser.add_argument("--review-token", metavar="T", help="its ingest token (default $SPANGUARD_REVIEW_TOKEN)")
    parser.add_argument(
        "--verdicts-endpoint",
        metavar="HOST:PORT",
        help="send the judge's verdicts as gen_ai.evaluation.result events (OTLP gRPC)",
    )


def _fail(message: str) -> int:
    print(f"spanguard gate: {message}", file=sys.stderr)
    return 2


def _settings(args: argparse.Namespace) -> Any:
    """The config file's settings under the options given; raises ValueError with one message."""
    from spanguard.review.evalgate.config import GateConfig, load_config

    config = load_config(args.config)
    data = config.model_dump()
    data["scorers"] = config.scorers  # already validated (and may hold a secret the dump would lose)
    for name in _OVERRIDES:
        value = getattr(args, name)
        if value is not None:
            data[name] = value
    if args.no_cache:
        data["cache"] = None
    try:
        return GateConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [f"--{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)]
        raise ValueError("; ".join(problems)) from None


def _destinations(args: argparse.Namespace) -> tuple[tuple[str, str] | None, Any]:
    """The review service (endpoint, token) and the verdicts' OTLP config the options name; ValueError if invalid."""
    from spanguard.review.evalgate.escalate import ENDPOINT_ENV, TOKEN_ENV
    from spanguard.review.verdicts import VerdictsConfig

    endpoint = args.review_endpoint or os.environ.get(ENDPOINT_ENV) or None
    token = args.review_token or os.environ.get(TOKEN_ENV) or None
    review = None
    if endpoint is not None:
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"--review-endpoint: not an http:// or https:// URL ({ENDPOINT_ENV})")
        if token is None:
            raise ValueError(f"--review-endpoint needs an ingest token: give --review-token or set {TOKEN_ENV}")
        review = (endpoint, token)
    verdicts = None
    if args.verdicts_endpoint:
        try:
            verdicts = VerdictsConfig(endpoint=args.verdicts_endpoint)
        except pydantic.ValidationError as exc:
            raise ValueError(f"--verdicts-endpoint: {exc.errors(include_url=False)[0]['msg']}") from None
    return review, verdicts


def _hand_over(result: Any, data: dict[str, Any], review: tuple[str, str] | None, verdicts: Any) -> None:
    """Pending-human cases to people, judge verdicts to OTLP; a failure is one line on stderr and counts in ``data``."""
    if review is not None:
        from spanguard.review.evalgate.escalate import escalate

        escalation = escalate(result, *review)
        data["escalation"] = escalation.as_report()
        if escalation.failed:
            print(
                f"spanguard gate: {escalation.failed} pending-human case(s) not sent to review: {escalation.error}",
                file=sys.stderr,
            )
    if verdicts is not None:
        from spanguard.review.evalgate.judge_events import send_judge_events

        sent = send_judge_events(result, verdicts)
        data["judge_events"] = sent.as_report()
        if sent.failed:
            print(f"spanguard gate: {sent.failed} judge verdict event(s) not exported", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run the gate; returns the exit code."""
    from spanguard.review.evalgate import report
    from spanguard.review.evalgate.dataset import DatasetError, load_dataset
    from spanguard.review.evalgate.runner import ScoreCache, run_gate
    from spanguard.review.evalgate.targets import Caller, TargetError, load_target
    from spanguard.yamlconfig import ConfigError

    try:
        config = _settings(args)
    except ConfigError as error:
        return _fail(str(error))
    except ValueError as error:
        return _fail(str(error))
    if not config.target:
        return _fail("no target: give --target (or target: in --config)")
    try:
        review, verdicts = _destinations(args)
    except ValueError as error:
        return _fail(str(error))
    judge = getattr(config.scorers, "judge", None)
    if judge is not None:
        from spanguard.review.evalgate.judge_eval import calibrated_threshold, evaluation_report, judge_gate_check

        # A judge that has not been shown to agree with people may not decide a merge.
        evaluation = evaluation_report(judge)
        may_gate, why = judge_gate_check(judge, evaluation)
        if not may_gate:
            return _fail(f"the judge may not gate: {why}")
        calibrated = calibrated_threshold(judge, evaluation)
        if calibrated is not None and "confidence_threshold" not in judge.model_fields_set:
            # Below the threshold judge-eval calibrated, the judge's agreement with people is not shown: people decide.
            judge = judge.model_copy(update={"confidence_threshold": calibrated})
            scorers = config.scorers.model_copy(update={"judge": judge})
            config = config.model_copy(update={"scorers": scorers})
    try:
        dataset = load_dataset(args.dataset)
    except DatasetError as error:
        return _fail(f"invalid dataset ({len(error.problems) + error.more} problems):\n{error}")
    try:
        baseline = report.load_baseline(args.baseline) if args.baseline else None
    except report.BaselineError as error:
        return _fail(str(error))
    try:
        target = load_target(config.target, model=config.model, timeout=config.timeout)
    except TargetError as error:
        return _fail(str(error))
    cache = ScoreCache(config.cache)
    if cache.problem:
        print(f"spanguard gate: warning: {cache.problem}", file=sys.stderr)
    caller = Caller(
        target,
        concurrency=config.concurrency,
        timeout=config.timeout,
        retries=config.retries,
        backoff=config.backoff,
    )
    result = asyncio.run(run_gate(dataset, caller, config, cache=cache))
    verdict = report.decide(result, baseline)
    data = report.report_data(result, verdict)
    _hand_over(result, data, review, verdicts)
    try:
        if args.junit:
            report.write_text(args.junit, report.junit_xml(result, verdict))
        if args.report:
            report.write_text(args.report, json.dumps(data, indent=2) + "\n")
        if args.summary:
            report.write_text(args.summary, report.markdown_summary(result, verdict))
        if args.write_baseline:
            if verdict.passed:
                report.write_text(args.write_baseline, json.dumps(data, indent=2) + "\n")
            else:
                print(
                    f"spanguard gate: {args.write_baseline} not written: a failing run never becomes the baseline",
                    file=sys.stderr,
                )
    except OSError as error:
        print(f"spanguard gate: cannot write an output: {error.strerror or error}", file=sys.stderr)
        return 3 if verdict.exit_code == 3 else 2
    if args.quiet:
        state = "passed" if verdict.passed else f"failed (exit {verdict.exit_code}): " + "; ".join(verdict.reasons)
        print(f"spanguard gate {state}")
    else:
        report.render_table(result, verdict)
    return verdict.exit_code
