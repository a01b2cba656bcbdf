"""``make demo``: the example agent's traces through the spanguard collector, and what arrived.

1. Starts the collector (``examples/collector-demo.yaml``) on its default ports, plus Arize Phoenix when it is
   installed in ``.venv-phoenix`` (``make test`` creates it), with an ``otlp/phoenix`` exporter to it.
2. Starts the review service (``spanguard review serve``) on SQLite at ``.spanguard/demo/review.db``, with ingest
   tokens for the collector's ``review`` exporter and for the agent's approval gate, and a reviewer token for you.
3. Runs ``examples/agent.py --multi-turn`` (each user turn its own trace) with the one line
   ``spanguard.instrument()``, exporting OTLP to the collector, content capture on (so in-process redaction is on
   too). Its refund waits at its approval gate (``examples/gate-policy.yaml``); the demo shows the pending request and
   approves it through the approvals API, as a reviewer would, and the refund then runs; bob then asks a follow-up.
4. Stops the collector with SIGTERM (it drains its queues, so the review items are delivered) and prints the traces
   kept, their risk and review tiers, what was redacted, and the review queue: bob's conversation as one session item
   (its turns reviewed as one, docs/review.md "Review by session"), the page's address and the token.

``SPANGUARD_DEMO_DIR`` moves the demo's files (default ``.spanguard/demo``); ``SPANGUARD_DEMO_PHOENIX=off`` leaves
Phoenix out even when it is installed; the ports are fixed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from spanguard.processors.tail_sampling.sampler import sampling_value
from spanguard.semconv import (
    GEN_AI_CONVERSATION_ID,
    SPANGUARD_REDACTION_ENTITIES,
    SPANGUARD_REVIEW_TIER,
    SPANGUARD_RISK_REASONS,
    SPANGUARD_RISK_TIER,
    ApprovalOutcome,
    ApprovalStatus,
)

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = Path(os.environ.get("SPANGUARD_DEMO_DIR") or ROOT / ".spanguard" / "demo").resolve()
PHOENIX = ROOT / ".venv-phoenix" / "bin" / "phoenix"
PHOENIX_HTTP, PHOENIX_GRPC = 6006, 14317
REVIEW_PORT = 8080
SPANGUARD = Path(sys.executable).with_name("spanguard")


def wait_http(url: str, seconds: float) -> bool:
    """Poll ``url`` until it answers 200."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def start_phoenix(console: Console) -> subprocess.Popen[bytes] | None:
    """Start Phoenix from its own venv (its dependencies conflict with spanguard's test extras)."""
    if not PHOENIX.exists():
        console.print("[dim]Phoenix is not installed (.venv-phoenix); traces go to the file exporter only.[/dim]")
        return None
    if os.environ.get("SPANGUARD_DEMO_PHOENIX") == "off":
        console.print("[dim]SPANGUARD_DEMO_PHOENIX=off: traces go to the file exporter only.[/dim]")
        return None
    env = {
        **os.environ,
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(PHOENIX_HTTP),
        "PHOENIX_GRPC_PORT": str(PHOENIX_GRPC),
        "PHOENIX_WORKING_DIR": str(DEMO_DIR / "phoenix"),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    process = subprocess.Popen([str(PHOENIX), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_http(f"http://127.0.0.1:{PHOENIX_HTTP}/healthz", 60):
        process.terminate()
        console.print("[yellow]Phoenix did not start; going on without it.[/yellow]")
        return None
    return process


def review_command(*args: str) -> list[str]:
    """The ``spanguard review`` command line on the demo's store."""
    return [str(SPANGUARD), "review", *args, "--db", f"sqlite:///{DEMO_DIR / 'review.db'}"]


def start_review(console: Console) -> tuple[subprocess.Popen[bytes], str, str, str] | None:
    """Start the review service on a fresh SQLite store; (process, ingest, agent and reviewer tokens), or None."""
    for stale in DEMO_DIR.glob("review.db*"):
        stale.unlink()

    def token(role: str, name: str) -> str:
        out = subprocess.run(review_command("token", "create", "--role", role, "--name", name), capture_output=True)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.decode(errors="replace").strip())
        return out.stdout.decode().strip()

    try:
        ingest, reviewer = token("ingest", "demo-collector"), token("reviewer", "demo-reviewer")
        agent = token("ingest", "support-agent")
    except RuntimeError as error:
        console.print(f"[red]The review store could not be created: {error}[/red]")
        return None
    process = subprocess.Popen(
        review_command("serve", "--port", str(REVIEW_PORT)),
        stdout=subprocess.DEVNULL,
        stderr=open(DEMO_DIR / "review.log", "wb"),
    )
    if not wait_http(f"http://127.0.0.1:{REVIEW_PORT}/healthz", 30):
        process.terminate()
        console.print(f"[red]The review service did not start; see {DEMO_DIR / 'review.log'}[/red]")
        return None
    return process, ingest, agent, reviewer


def approve_when_asked(console: Console, token: str, agent: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Wait for the agent's approval request, show it, and approve it through the API as the demo reviewer."""
    import httpx

    base = f"http://127.0.0.1:{REVIEW_PORT}/v1/approvals"
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + seconds
    pending: list[dict[str, Any]] = []
    while not pending and agent.poll() is None and time.monotonic() < deadline:
        body = httpx.get(base, params={"status": ApprovalStatus.PENDING.value}, headers=headers, timeout=10).json()
        pending = body["items"]
        if not pending:
            time.sleep(0.2)
    if not pending:
        console.print("[yellow]The agent asked for no approval.[/yellow]")
        return
    request = pending[0]
    table = Table(title="approval gate: the agent is waiting for a person")
    for column in ("approval", "action", "tier", "arguments (redacted)", "why it asks", "hard timeout"):
        table.add_column(column)
    table.add_row(
        request["id"],
        request["action"],
        request["tier"],
        ", ".join(f"{k}={v}" for k, v in request["arguments"].items()),
        "; ".join(request["reasons"]),
        request["hard_deadline"],
    )
    console.print(table)
    time.sleep(1.0)  # the agent is blocked in its long poll meanwhile
    decided = httpx.post(
        f"{base}/{request['id']}/decision", json={"outcome": ApprovalOutcome.APPROVE.value}, headers=headers, timeout=10
    )
    console.print(
        f"approved by [bold]demo-reviewer[/bold] (POST /v1/approvals/{request['id']}/decision: "
        f"{decided.status_code}, status {decided.json().get('status')}); the agent resumes and the refund runs"
    )


def review_api(token: str, path: str, **params: str) -> Any:
    """One GET of the review API, as JSON."""
    import httpx

    response = httpx.get(
        f"http://127.0.0.1:{REVIEW_PORT}{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    response.raise_for_status()
    return response.json()


def review_queue(token: str) -> list[dict[str, Any]]:
    """What waits in the review service's queue: session items and the traces reviewed on their own."""
    return list(review_api(token, "/v1/review-items")["items"])


def session_lines(token: str) -> list[str]:
    """One line per session item: its id, conversation, tiers, traces and user turns, and its page link."""
    lines = []
    for item in review_api(token, "/v1/review-items", kind="session")["items"]:
        detail = review_api(token, f"/v1/review-items/{item['id']}")
        turns = sum(turn["role"] == "user" for turn in detail["conversation"]["turns"])
        lines.append(
            f"session item #{item['id']}: conversation {item['conversation_id']}, {item['tier']}, risk "
            f"{item['risk_tier']}, {item['traces']} trace(s), {turns} user turn(s) reviewed as one: "
            f"http://127.0.0.1:{REVIEW_PORT}/#item={item['id']}"
        )
    return lines


DECISION = re.compile(
    r"tail sampling: trace (?P<trace>[0-9a-f]{32}) (?P<outcome>kept|dropped): tier (?P<tier>\w+), "
    r"rate (?P<rate>[0-9.e-]+), reasons (?P<reasons>\S+)(?P<how> \((?:early|recalled)\))?"
)


def sampling_decisions(log: Path) -> dict[str, dict[str, str]]:
    """The collector's tail-sampling decisions (its debug log lines), by trace id; the last one of a trace wins."""
    found: dict[str, dict[str, str]] = {}
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        try:
            message = json.loads(line).get("msg", "")
        except ValueError:
            continue
        match = DECISION.search(message)
        if match:
            found[match["trace"]] = match.groupdict()
    return found


def why(decision: dict[str, str] | None, conversation: str) -> str:
    """One sentence on why a trace was kept or dropped, from its decision and the sampling rule (docs/sampling.md)."""
    if decision is None:
        return "no decision in the collector's log"
    reasons = [] if decision["reasons"] == "-" else decision["reasons"].split(",")
    tier, rate = decision["tier"], float(decision["rate"])
    if decision["how"] and "recalled" in decision["how"]:
        return "dropped at first, then kept: its session turned red"
    if tier == "red":
        return "red: always kept, whole (" + ", ".join(r for r in reasons if r != "session_red") + ")"
    if "session_red" in reasons:
        return f"{tier}, but its session turned red earlier: kept, as every later turn of that session is"
    value = sampling_value(conversation)
    verdict = "kept" if decision["outcome"] == "kept" else "dropped"
    compare = "<" if verdict == "kept" else ">="
    return (
        f"{tier} ({', '.join(reasons) or 'nothing risky'}): {verdict} at the {tier} rate {rate:g}, because its "
        f"session's sampling value {value:.3f} {compare} {rate:g} (the same for every turn of the session)"
    )


def decisions_table(turns: Path, log: Path) -> Table:
    """Every turn the agent sent, with the collector's decision on its trace and why."""
    decisions = sampling_decisions(log)
    table = Table(title="why each turn's trace was kept or dropped (tail sampling: red always, yellow 25 %, green 1 %)")
    for column in ("conversation", "turn", "trace", "decision", "why"):
        table.add_column(column)
    counts: dict[str, int] = defaultdict(int)
    for line in turns.read_text().splitlines() if turns.exists() else []:
        turn = json.loads(line)
        counts[turn["conversation"]] += 1
        decision = decisions.get(turn["trace_id"])
        table.add_row(
            turn["conversation"],
            str(counts[turn["conversation"]]),
            turn["trace_id"][:12],
            decision["outcome"] if decision else "-",
            why(decision, turn["conversation"]),
        )
    return table


def collector_config(with_phoenix: bool) -> Path:
    """The demo config, with an ``otlp/phoenix`` exporter added when Phoenix runs."""
    text = (ROOT / "examples" / "collector-demo.yaml").read_text()
    if with_phoenix:
        text = text.replace(
            "exporters:\n  file:",
            f'exporters:\n  otlp/phoenix: {{endpoint: "127.0.0.1:{PHOENIX_GRPC}", tls: {{insecure: true}}}}\n  file:',
        ).replace("exporters: [file]", "exporters: [file, otlp/phoenix]")
    path = DEMO_DIR / "collector.yaml"
    path.write_text(text)
    return path


def read_traces(path: Path) -> dict[str, list[Any]]:
    """The spans the file exporter wrote, by trace id."""
    from spanguard.collector.receivers.otlp.otlp_json import decode_request
    from spanguard.processors import otlp

    traces: dict[str, list[Any]] = defaultdict(list)
    if not path.exists():
        return traces
    for line in path.read_text().splitlines():
        if line.strip():
            for view in otlp.views_of(decode_request(line.encode()).resource_spans):
                traces[view.trace_id].append(view)
    return traces


def main() -> int:
    """Run the demo; returns the exit code."""
    console = Console(width=150)
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    (DEMO_DIR / "traces.jsonl").unlink(missing_ok=True)
    phoenix = start_phoenix(console)
    review = start_review(console)
    if review is None:
        if phoenix is not None:
            phoenix.terminate()
        return 1
    review_service, ingest_token, agent_token, reviewer_token = review
    config = collector_config(phoenix is not None)
    env = {**os.environ, "SPANGUARD_DEMO_DIR": str(DEMO_DIR), "SPANGUARD_REVIEW_TOKEN": ingest_token}
    collector = subprocess.Popen(
        # debug: one log line per tail-sampling decision, which the demo reads to say why each trace was kept.
        [sys.executable, "-m", "spanguard.collector", "--config", str(config), "--log-level", "debug"],
        env=env,
        stderr=open(DEMO_DIR / "collector.log", "wb"),
    )
    try:
        if not wait_http("http://127.0.0.1:8888/healthz", 30):
            console.print(f"[red]The collector did not start; see {DEMO_DIR / 'collector.log'}[/red]")
            review_service.terminate()
            return 1
        console.rule("collector up: OTLP gRPC 127.0.0.1:4317, HTTP 127.0.0.1:4318, metrics 127.0.0.1:8888")
        agent_env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
            "OTEL_SERVICE_NAME": "support-agent",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
            "OTEL_METRICS_EXPORTER": "none",
            "SPANGUARD_REVIEW_ENDPOINT": f"http://127.0.0.1:{REVIEW_PORT}",
            "SPANGUARD_REVIEW_TOKEN": agent_token,
            "SPANGUARD_GATE_POLICY": str(ROOT / "examples" / "gate-policy.yaml"),
            "SPANGUARD_GATE_DIR": str(DEMO_DIR / "approvals"),
        }
        agent_env.pop("OPENAI_BASE_URL", None)
        console.rule("the example agent (real OpenAI SDK -> local fake provider), spanguard.instrument() on")
        turns_file = DEMO_DIR / "turns.jsonl"
        turns_file.unlink(missing_ok=True)
        agent = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / "agent.py"), "--multi-turn", "--traces-file", str(turns_file)],
            env=agent_env,
        )
        try:
            approve_when_asked(console, reviewer_token, agent)
            if agent.wait(timeout=120) != 0:
                raise subprocess.CalledProcessError(agent.returncode, "examples/agent.py")
        finally:
            if agent.poll() is None:
                agent.kill()
        console.print("[dim]waiting for tail sampling to decide (decision_wait 3s)...[/dim]")
        time.sleep(4.5)
    finally:
        collector.send_signal(signal.SIGTERM)
        try:
            collector.wait(timeout=20)
        except subprocess.TimeoutExpired:
            collector.kill()
    traces = read_traces(DEMO_DIR / "traces.jsonl")
    table = Table(title=f"traces kept by the collector ({len(traces)}; one per user turn, of 2 conversations)")
    for column in ("trace", "conversation", "risk tier", "reasons", "review queue", "spans", "redacted"):
        table.add_column(column)
    for trace_id, views in traces.items():
        first = views[0].attributes
        conversation = next(
            (v.attributes[GEN_AI_CONVERSATION_ID] for v in views if GEN_AI_CONVERSATION_ID in v.attributes), "-"
        )
        redacted = sorted({e for v in views for e in v.attributes.get(SPANGUARD_REDACTION_ENTITIES, ())})
        table.add_row(
            trace_id[:12],
            conversation,
            str(first.get(SPANGUARD_RISK_TIER, "-")),
            ", ".join(first.get(SPANGUARD_RISK_REASONS, ())) or "-",
            str(first.get(SPANGUARD_REVIEW_TIER, "-")),
            str(len(views)),
            ", ".join(redacted) or "-",
        )
    console.print(table)
    console.print(decisions_table(DEMO_DIR / "turns.jsonl", DEMO_DIR / "collector.log"))
    console.print(f"Traces (OTLP JSON lines): [bold]{DEMO_DIR / 'traces.jsonl'}[/bold]")
    console.print(f"Collector log: {DEMO_DIR / 'collector.log'}")
    try:
        items, sessions = review_queue(reviewer_token), session_lines(reviewer_token)
    except Exception as error:
        console.print(f"[red]The review service did not answer: {type(error).__name__}[/red]")
        items, sessions = [], []
    queue = Table(title=f"review queue ({len(items)} item(s) waiting)")
    columns = ("item", "kind", "trace / conversation", "review tier", "risk", "reasons", "models", "first user turn")
    for column in columns:
        queue.add_column(column)
    for item in items:
        # A session item's trace id is a key of the store, no trace's: it is shown by its conversation.
        session = item["kind"] == "session"
        queue.add_row(
            str(item["id"]),
            f"session ({item['traces']} traces)" if session else "trace",
            item["conversation_id"] if session else item["trace_id"][:12],
            item["tier"],
            item["risk_tier"],
            ", ".join(item["reasons"]) or "-",
            ", ".join(item["models"]) or "-",
            item["preview"][:60],
        )
    console.print(queue)
    for line in sessions:
        console.print(line, soft_wrap=True)  # one line each, whatever the terminal's width: scripts read it
    console.print(f"Reviewers' page: [bold]http://127.0.0.1:{REVIEW_PORT}/[/bold]  sign in with this reviewer token:")
    console.print(f"  [bold]{reviewer_token}[/bold]")
    console.print(f"Review store: {DEMO_DIR / 'review.db'}   review service log: {DEMO_DIR / 'review.log'}")
    if phoenix is not None:
        console.print(f"Phoenix: [bold]http://127.0.0.1:{PHOENIX_HTTP}[/bold] (project 'default')")
    try:
        if sys.stdin.isatty():
            input("Press Enter to stop the review service" + (" and Phoenix. " if phoenix is not None else ". "))
        else:
            serve = " ".join(review_command("serve", "--port", str(REVIEW_PORT)))
            console.print("[dim]Not a terminal: stopping. Serve the queue again with:[/dim]")
            # A command to copy: on its own line, never wrapped, whatever the console's width.
            console.print(serve, soft_wrap=True, markup=False, highlight=False)
    finally:
        review_service.terminate()
        if phoenix is not None:
            phoenix.terminate()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
