"""Approval-gate simulation of the seed's scenario: 12,000 agent tasks a day under the default policy, then under the
policy the fatigue report suggests from that history.

The scenario (the seed: "an autonomous agent to handle 12,000 daily tasks", "aim to keep intervention requests to
fewer than 10 per day"): a support agent whose tools are all behind ``@spanguard.gate``. Per task:

* one read, always: ``lookup_order`` (50 %), ``search_kb`` (35 %), ``get_customer`` (15 %); the green tier of the
  seed's table ("read-only lookups"), but nothing says so until a policy does;
* ``issue_refund`` in 5 % of tasks (about 600 a day), ``amount`` log-normal with a median of $35 and sigma 1.0 (most
  refunds are small, a few are hundreds of dollars: about 0.4 % are above $500), rounded to cents;
* ``send_email`` to outside addresses in 4 % of tasks (about 480 a day): one recipient mostly (80 %), 2 to 5 (19.7 %),
  and a bulk send to 20 to 300 recipients in 0.3 % of them (about 1.4 a day);
* the red actions, marked ``tier="red"`` on their gates by the app (the seed's "payments, data deletion"):
  ``delete_account`` (2 approvers) in 0.01 % of tasks and ``pay_new_payee`` in 0.015 % (about 1.2 and 1.8 a day).

The reviewers (one decision per request, as if they had time for all; under the default policy no team would, which
is the point): reads and small refunds and e-mails are approved unchanged. A refund above $600 (the support team's
own refund limit) is rejected with probability 0.25 and reduced (modified) with 0.15; an e-mail to more than 60
recipients is rejected with 0.2 and trimmed (modified) with 0.2. ``delete_account`` is rejected in 8 % of requests
(the wrong account), ``pay_new_payee`` rejected in 15 % and modified in 8 % (a wrong amount or payee): often enough
to be named for a prompt fix. Decision times are log-normal, median 4 minutes, sigma 1.2 (about 14 % escalate at
15 minutes, about 3 in 10,000 time out at 4 hours). Troubles are modelled only above an amount or a
recipient count; reviewers who also rejected some small refunds would make the report's threshold rule (the round
number below the smallest rejected or modified value) suggest a lower threshold, or green with those rejections let
through, which the report then counts and says.

What runs: the 14 days under the default policy (``GatePolicy()``: every gated action asks, default tier yellow),
giving the history; ``build_report`` on it; the same 14 days re-decided under the docs' example policy (for
comparison) and under the report's suggested policy, and 14 fresh days (another seed) under the suggested policy.
Every red call is checked: it must ask, and at its hard timeout it must be denied. Seeded, so each run prints the
same numbers. Unlike the timing benchmarks this one checks what it claims: it exits 1 when the suggested policy
needs 10 or more interventions a day on average, or lets any red action run unapproved. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the package before tests/ (whose tests/spanguard folder would shadow it)

from spanguard.instrumentation.gate_policy import GatePolicy, decide  # noqa: E402
from spanguard.review.fatigue import build_report, suggested_policy  # noqa: E402

SEED = 20260312
FRESH_SEED = SEED + 1
TASKS_PER_DAY = 12_000
DAYS = 14
BUDGET = 10  # the seed's "fewer than 10 per day"
START = dt.datetime(2026, 3, 2)  # a Monday; UTC
RED_ON_GATE = {"delete_account": 2, "pay_new_payee": 1}  # action: approvals, as the app's gate(tier="red") sets them
DOCS_EXAMPLE_POLICY = {  # docs/gates.md ("Policy")
    "version": 1,
    "default_tier": "yellow",
    "budget_per_day": 10,
    "actions": {
        "issue_refund": {"tier": "yellow", "when": "amount > 100"},
        "send_email": {"tier": "yellow", "when": "len(recipients) > 50"},
        "delete_account": {"tier": "red", "approvals": 2},
        "lookup_order": "green",
    },
}


@dataclass(frozen=True)
class Call:
    """One gated tool call and what the reviewers would do with it, drawn once so every policy sees the same."""

    day: int
    at: dt.datetime
    action: str
    arguments: dict[str, Any]
    outcome: str  # approved, rejected, modified: the reviewers' answer if asked
    decision_s: float


def _read(rng: random.Random) -> tuple[str, dict[str, Any]]:
    roll = rng.random()
    if roll < 0.50:
        return "lookup_order", {"order_id": f"A-{rng.randrange(10**7):07d}"}
    if roll < 0.85:
        return "search_kb", {"query": "redacted"}
    return "get_customer", {"customer_id": f"c-{rng.randrange(10**6):06d}"}


def _outcome(rng: random.Random, action: str, arguments: dict[str, Any]) -> str:
    roll = rng.random()
    if action == "issue_refund" and arguments["amount"] > 600:
        return "rejected" if roll < 0.25 else "modified" if roll < 0.40 else "approved"
    if action == "send_email" and len(arguments["recipients"]) > 60:
        return "rejected" if roll < 0.2 else "modified" if roll < 0.4 else "approved"
    if action == "delete_account":
        return "rejected" if roll < 0.08 else "approved"
    if action == "pay_new_payee":
        return "rejected" if roll < 0.15 else "modified" if roll < 0.23 else "approved"
    return "approved"


def _when(rng: random.Random, day: int) -> dt.datetime:
    # Support hours are busier: 70 % of tasks between 08:00 and 20:00 UTC, the rest at any time.
    seconds = rng.uniform(8 * 3600, 20 * 3600) if rng.random() < 0.7 else rng.uniform(0, 86_400)
    return START + dt.timedelta(days=day, seconds=seconds)


def simulate(seed: int, days: int, tasks_per_day: int) -> list[Call]:
    """Every gated call of ``days`` days of ``tasks_per_day`` tasks, with the reviewers' answers."""
    rng = random.Random(seed)
    calls: list[Call] = []
    for day in range(days):
        for _ in range(tasks_per_day):
            at = _when(rng, day)
            actions = [_read(rng)]
            roll = rng.random()
            if roll < 0.05:
                actions.append(
                    ("issue_refund", {"order_id": "A-1", "amount": round(rng.lognormvariate(math.log(35), 1.0), 2)})
                )
            elif roll < 0.09:
                kind = rng.random()
                count = 1 if kind < 0.8 else rng.randint(2, 5) if kind < 0.997 else rng.randint(20, 300)
                actions.append(("send_email", {"recipients": ["redacted"] * count, "subject": "redacted"}))
            elif roll < 0.0901:
                actions.append(("delete_account", {"customer_id": "redacted"}))
            elif roll < 0.09025:
                actions.append(("pay_new_payee", {"payee": "redacted", "amount": round(rng.uniform(200, 5000), 2)}))
            for offset, (action, arguments) in enumerate(actions):
                calls.append(
                    Call(
                        day,
                        at + dt.timedelta(seconds=20 * offset),
                        action,
                        arguments,
                        _outcome(rng, action, arguments),
                        rng.lognormvariate(math.log(240), 1.2),
                    )
                )
    return calls


def history(calls: list[Call], policy: GatePolicy) -> list[dict[str, Any]]:
    """The approvals store's records of the calls that ``policy`` asks about (as ``history(since)`` gives them)."""
    records = []
    for n, call in enumerate(calls):
        decision = decide(policy, call.action, call.arguments, tier="red" if call.action in RED_ON_GATE else None)
        if not decision.asks:
            continue
        timed_out = call.decision_s > decision.hard_timeout_s
        decided_at = call.at + dt.timedelta(seconds=min(call.decision_s, decision.hard_timeout_s))
        records.append(
            {
                "id": f"apr_sim{n:018d}",
                "action": call.action,
                "tier": decision.tier,
                "status": "timed_out" if timed_out else call.outcome,
                "approvals_required": RED_ON_GATE.get(call.action, decision.approvals),
                "created_at": call.at,
                "decided_at": decided_at,
                "escalated_at": call.at + dt.timedelta(seconds=decision.soft_timeout_s)
                if call.decision_s > decision.soft_timeout_s
                else None,
                "modified": call.outcome == "modified" and not timed_out,
                "arguments": call.arguments,
            }
        )
    return records


@dataclass
class Run:
    """One policy over one stretch of days."""

    name: str
    days: int
    per_day: Counter
    red_calls: int = 0
    red_asked: int = 0
    red_unapproved: int = 0  # red calls that would have run without a person: must stay 0
    troubled_unasked: int = 0  # calls the reviewers would have rejected or modified that ran unasked

    @property
    def mean(self) -> float:
        return sum(self.per_day.values()) / self.days

    @property
    def busiest(self) -> int:
        return max(self.per_day.values(), default=0)

    @property
    def over_budget(self) -> int:
        return sum(1 for day in range(self.days) if self.per_day.get(day, 0) >= BUDGET)


def rerun(name: str, calls: list[Call], policy: GatePolicy, days: int) -> Run:
    """Re-decide every call under ``policy`` (the app's red gates stay red) and count what it would have asked."""
    run = Run(name, days, Counter())
    for call in calls:
        red = call.action in RED_ON_GATE
        decision = decide(policy, call.action, call.arguments, tier="red" if red else None)
        if red:
            run.red_calls += 1
            run.red_asked += decision.asks
            # Unapproved: not asked at all, or asked but allowed to proceed when nobody decides.
            run.red_unapproved += (not decision.asks) or decision.on_hard_timeout != "deny"
        if decision.asks:
            run.per_day[call.day] += 1
        elif call.outcome != "approved":
            run.troubled_unasked += 1
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=DAYS, help=f"days to simulate (default {DAYS})")
    parser.add_argument("--tasks", type=int, default=TASKS_PER_DAY, help=f"agent tasks a day (default {TASKS_PER_DAY})")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers and the report here")
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 120)
    began = time.perf_counter()
    calls = simulate(args.seed, args.days, args.tasks)
    default = GatePolicy()
    records = history(calls, default)
    now = START + dt.timedelta(days=args.days) - dt.timedelta(seconds=1)
    report = build_report(records, budget_per_day=BUDGET, policy=default, now=now, days=args.days)
    suggested = suggested_policy(report)
    runs = [
        rerun("default policy (every gated action asks)", calls, default, args.days),
        rerun("docs/gates.md example policy", calls, GatePolicy.model_validate(DOCS_EXAMPLE_POLICY), args.days),
        rerun("suggested policy, same days", calls, suggested, args.days),
        rerun(
            f"suggested policy, {args.days} fresh days",
            simulate(args.seed + 1, args.days, args.tasks),
            suggested,
            args.days,
        ),
    ]
    elapsed = time.perf_counter() - began

    console.print(
        f"[bold]approval gates[/bold]: {args.tasks:,} tasks a day for {args.days} days, {len(calls):,} gated calls, "
        f"{len(records):,} approval requests under the default policy (seed {args.seed})"
    )
    table = Table(title="interventions a day", title_justify="left")
    for heading in (
        "policy",
        "mean/day",
        "busiest day",
        f"days >= {BUDGET}",
        "red asked",
        "red unapproved",
        "troubled unasked",
    ):
        table.add_column(heading, justify="left" if heading == "policy" else "right", no_wrap=heading == "policy")
    for run in runs:
        table.add_row(
            run.name,
            f"{run.mean:,.1f}",
            f"{run.busiest:,}",
            f"{run.over_budget}",
            f"{run.red_asked}/{run.red_calls}",
            f"[red]{run.red_unapproved}[/red]" if run.red_unapproved else "0",
            f"{run.troubled_unasked}",
        )
    console.print(table)
    console.print(
        "troubled unasked: calls the simulated reviewers would have rejected or modified that the policy let run",
        style="dim",
    )
    console.print("[bold]the report's suggestions[/bold]")
    for item in report["suggestions"]:
        change = f" ({item['condition']})" if item.get("condition") else ""
        console.print(f"  {item['action']}: {item['kind']}{change}: {item['reason']}", markup=False)
    projection = report["projection"]
    console.print(
        f"the report's own projection: {projection['recorded_per_day']:,.1f} a day recorded, "
        f"{projection['suggested_per_day']:.1f} under the suggested policy"
    )
    console.print("[bold]suggested policy[/bold]")
    console.print(json.dumps(report["suggested_policy"]), markup=False, highlight=False, soft_wrap=True)

    same, fresh = runs[2], runs[3]
    checks = [
        (f"suggested policy < {BUDGET} interventions/day (same days)", same.mean < BUDGET, f"{same.mean:.1f}/day"),
        (f"suggested policy < {BUDGET} interventions/day (fresh days)", fresh.mean < BUDGET, f"{fresh.mean:.1f}/day"),
        (
            "no red action runs unapproved, under any policy",
            all(run.red_unapproved == 0 and run.red_asked == run.red_calls for run in runs),
            ", ".join(f"{run.red_unapproved}" for run in runs),
        ),
    ]
    for text, ok, detail in checks:
        verdict = "[green]PASS[/green]" if ok else "[red]FAIL[/red]"
        console.print(f"  {verdict}  {text}: {detail}")
    console.print(f"[dim]total {elapsed:.1f} s[/dim]")
    if args.json is not None:
        runs_json = [
            {
                "name": run.name,
                "mean_per_day": run.mean,
                "per_day": [run.per_day.get(day, 0) for day in range(run.days)],
                "red_calls": run.red_calls,
                "red_asked": run.red_asked,
                "red_unapproved": run.red_unapproved,
                "troubled_unasked": run.troubled_unasked,
            }
            for run in runs
        ]
        args.json.write_text(json.dumps({"runs": runs_json, "report": report}, indent=1))
        console.print(f"[dim]wrote {args.json}[/dim]")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
