"""``spanguard gates report``: the approval-fatigue report, read from the approvals store or from the review service.

``--db`` reads the store's history and builds the report here (:func:`spanguard.review.fatigue.build_report`);
``--endpoint`` asks the service's ``GET /v1/approvals/report`` and checks its answer before showing it. A rich table
in the terminal, or the report's JSON with ``--json``. Any failure is one line on stderr and exit code 2. What the
report says and how it suggests: docs/gates.md ("Approval fatigue").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from spanguard._logging import safe_url

__all__ = ["GatesError", "add_arguments", "fetch_report", "read_report", "run"]

REPORT_ROUTE = "/v1/approvals/report"
TOKEN_ENV = "SPANGUARD_REVIEW_TOKEN"
TIMEOUT_S = 30.0
_DETAIL_MAX = 200


class GatesError(Exception):
    """A report that cannot be made or read; the message is the one line the command prints."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``gates`` subcommands to ``parser``."""
    commands = parser.add_subparsers(dest="gates_command", metavar="COMMAND", required=True)
    report = commands.add_parser("report", help="the approval-fatigue report: counts, timings, suggestions")
    source = report.add_mutually_exclusive_group()
    source.add_argument(
        "--db", help="the review store: sqlite:///path (default sqlite:///.spanguard/review.db) or a PostgreSQL URL"
    )
    source.add_argument("--endpoint", help="the review service's URL (asks GET /v1/approvals/report)")
    report.add_argument("--token", help=f"a reviewer token for --endpoint (default: ${TOKEN_ENV})")
    report.add_argument("--days", type=int, default=30, help="the last N UTC days, today included (default 30)")
    report.add_argument(
        "--config", help="the review service's config: its store (unless --db) and approvals.policy (--db only)"
    )
    report.add_argument("--policy", help="the gate policy in force (YAML), the base of the suggested one (--db only)")
    report.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    """Run a ``gates`` subcommand; returns the exit code."""
    try:
        if not 1 <= args.days <= 366:
            raise GatesError(f"--days must be from 1 to 366, not {args.days}")
        if args.endpoint:
            if args.policy or args.config:
                raise GatesError("--policy and --config apply to --db only: the service reports with its own policy")
            token = args.token or os.environ.get(TOKEN_ENV)
            if not token:
                raise GatesError(f"--endpoint needs a reviewer token: --token or ${TOKEN_ENV}")
            report = fetch_report(args.endpoint, token, days=args.days)
        else:
            if args.token:
                raise GatesError("--token applies to --endpoint only")
            report = read_report(args.db, days=args.days, policy_file=args.policy, config_file=args.config)
    except GatesError as error:
        print(f"spanguard gates: {error}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        render(report)
    return 0


def _load_policy(path: str) -> Any:
    from spanguard.instrumentation.gate_policy import load_policy
    from spanguard.yamlconfig import ConfigError

    try:
        return load_policy(path)
    except ConfigError as error:
        # One line: the problems (each "file:line:column: path: what") joined.
        raise GatesError(f"invalid gate policy: {'; '.join(str(p) for p in error.problems)}") from None


def read_report(
    db: str | None,
    *,
    days: int,
    policy_file: str | None = None,
    config_file: str | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """The report built from the approvals store at ``db`` (else the review config's store, else the default one);
    the policy is ``policy_file``'s, else the review config's ``approvals.policy``, else the default policy."""
    from sqlalchemy.exc import SQLAlchemyError

    from spanguard.instrumentation.gate_policy import GatePolicy
    from spanguard.review.config import load_config
    from spanguard.review.fatigue import build_report, window_start
    from spanguard.yamlconfig import ConfigError

    try:
        config = load_config(config_file, db=db)  # also the service's own check of a store URL
    except ConfigError as error:
        raise GatesError(" ".join(str(error).split("\n"))) from None
    policy = _load_policy(policy_file) if policy_file else config.approvals.policy
    url = config.db
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///")).expanduser()
        if not path.is_file():  # never create an empty store just to report on it
            raise GatesError(f"no review store at {path}")
    from spanguard.review.approvals import ApprovalStore
    from spanguard.review.store import ReviewStore

    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    try:
        store = ReviewStore(url)
    except (SQLAlchemyError, ImportError, ValueError) as error:
        raise GatesError(f"--db {safe_url(url)}: {type(error).__name__}: {_first_line(error)}") from None
    try:
        records = ApprovalStore(store).history(window_start(now, days), arguments=True)
    except SQLAlchemyError as error:
        hint = " (run `spanguard review migrate` on it)" if "approval_requests" in str(error) else ""
        reason = _first_line(getattr(error, "orig", None) or error)
        raise GatesError(f"cannot read approvals from {safe_url(url)}{hint}: {reason}") from None
    finally:
        store.shutdown()
    policy = policy or GatePolicy()
    return build_report(records, budget_per_day=policy.budget_per_day, policy=policy, now=now, days=days)


def fetch_report(endpoint: str, token: str, *, days: int) -> dict:
    """The report from the review service at ``endpoint``, checked against the report's schema (it is untrusted)."""
    import httpx
    from pydantic import ValidationError

    from spanguard.review.fatigue import FatigueReport

    url = endpoint.rstrip("/") + REPORT_ROUTE
    shown = safe_url(endpoint)
    try:
        response = httpx.get(
            url, params={"days": days}, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S
        )
    except httpx.InvalidURL as error:
        raise GatesError(f"--endpoint {shown!r} is not a URL: {error}") from None
    except httpx.UnsupportedProtocol:
        raise GatesError(f"--endpoint {shown!r} must be an http:// or https:// URL") from None
    except httpx.HTTPError as error:
        raise GatesError(f"cannot reach the review service at {shown}: {type(error).__name__}: {error}") from None
    if response.status_code != 200:
        detail = _detail(response)
        if response.status_code in (401, 403):
            raise GatesError(f"the review service at {shown} refused the token ({response.status_code}{detail})")
        if response.status_code == 404:
            raise GatesError(f"the review service at {shown} has no {REPORT_ROUTE} (404{detail})")
        raise GatesError(f"the review service at {shown} answered {response.status_code}{detail}")
    try:
        data = response.json()
    except ValueError:
        raise GatesError(f"the review service at {shown} answered with something that is not JSON") from None
    try:
        return FatigueReport.model_validate(data).to_json()
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(map(str, first["loc"])) or "(top level)"
        raise GatesError(f"the review service's answer is not a fatigue report: {where}: {first['msg']}") from None


def _detail(response: Any) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(detail, str) or not detail:
        return ""
    return ": " + (detail if len(detail) <= _DETAIL_MAX else detail[: _DETAIL_MAX - 3] + "...")


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:_DETAIL_MAX]


# --------------------------------------------------------------------------------------------------------------------
# The terminal view


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m {seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h {seconds % 3600 // 60:02.0f}m"


def _share(value: float | None) -> str:
    from spanguard.review.fatigue import percent

    return "-" if value is None else percent(value)


# (report field, column heading): short headings, so the tables fit an 80-column terminal without cutting names.
_COUNT_COLUMNS = (
    ("requested", "asked"),
    ("approved", "ok"),
    ("modified", "mod"),
    ("rejected", "rej"),
    ("timed_out", "t/o"),
    ("escalated", "esc"),
)
_LEGEND = "ok: approved unchanged, mod: modified, rej: rejected, t/o: timed out, esc: escalated"


def render(report: dict, console: Any = None) -> None:
    """Print ``report`` as tables (days, actions, tiers), the suggestions, and the suggested policy as YAML."""
    import yaml
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    start, end = report["window_start"][:10], report["window_end"][:10]
    budget = report["budget_per_day"]
    console.print(f"[bold]approval fatigue[/bold], {start} to {end} (UTC, {report['days']} days), budget {budget}/day")

    def table(title: str, keys: tuple[str, ...], tail: tuple[str, ...]) -> Any:
        out = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        for key in keys:
            out.add_column(key, no_wrap=True)
        for _, heading in _COUNT_COLUMNS:
            out.add_column(heading, justify="right", no_wrap=True)
        for heading in tail:
            out.add_column(heading, justify="right", no_wrap=True)
        return out

    days = table("per day", ("date",), ("budget used", "suggested"))
    for row in report["by_day"]:
        share = row["budget_share"]
        used = f"[red]{share:.0%}[/red]" if share > 1 else f"{share:.0%}"
        counts = (str(row[field]) for field, _ in _COUNT_COLUMNS)
        days.add_row(row["date"], *counts, used, str(row["suggested_interventions"]))
    console.print(days)

    actions = table("per action", ("action", "tier"), ("ok %", "median", "p95"))
    for row in report["by_action"]:
        actions.add_row(
            row["action"],
            row["tier"],
            *(str(row[field]) for field, _ in _COUNT_COLUMNS),
            _share(row.get("approved_unchanged_share")),
            _duration(row["median_decision_s"]),
            _duration(row["p95_decision_s"]),
        )
    console.print(actions)
    tiers = table("per tier", ("tier",), ("median", "p95"))
    for row in report["by_tier"]:
        tiers.add_row(
            row["tier"],
            *(str(row[field]) for field, _ in _COUNT_COLUMNS),
            _duration(row["median_decision_s"]),
            _duration(row["p95_decision_s"]),
        )
    console.print(tiers)
    console.print(_LEGEND, style="dim")

    suggestions = report["suggestions"]
    if suggestions:
        console.print("[bold]suggestions[/bold]")
        for item in suggestions:
            change = f": when {item['condition']}" if item.get("condition") else ""
            kind = item["kind"].replace("_", " ")
            console.print(f"  {item['action']}: {kind}{change}. {item['reason']}", markup=False)
    else:
        console.print("no suggestions (an action needs 20 ended requests to get one)")
    projection = report["projection"]
    verdict = "[green]within[/green]" if projection["within_budget"] else "[red]over[/red]"
    console.print(
        f"interventions a day: {projection['recorded_per_day']:.1f} recorded, "
        f"{projection['suggested_per_day']:.1f} under the suggested policy (busiest day "
        f"{projection['suggested_max_day']}, {verdict} the budget); "
        f"{projection['unasked_rejected_or_modified']} rejected or modified requests it would not have asked"
    )
    if report.get("skipped_count"):
        console.print(f"[yellow]{report['skipped_count']} record(s) skipped[/yellow] (reasons in --json)")
    console.print("[bold]suggested policy[/bold]")
    # Plain and unwrapped: this is meant to be copied into a policy file.
    text = yaml.safe_dump(report["suggested_policy"], sort_keys=False, allow_unicode=True)
    console.print(text.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
