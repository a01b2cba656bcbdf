"""Review service benchmark: ingestion through the HTTP API against the bare database write, and the claim → decision
round trip under concurrent reviewers, on SQLite and on PostgreSQL, in one run.

What runs, on each database (see bench/README.md for the details and how to read the tables):

* **floor**: the same review-item rows the service would write, inserted straight into the same database with
  SQLAlchemy Core (``insert(ReviewItem)``, executemany, one transaction per 50 rows) from this process. Rows are built
  before the clock starts; measured before and after the API runs.
* **ingest (a)**: realistic items (one agent trace each: ``invoke_agent`` root, 3 ``chat`` spans with
  ``gen_ai.input.messages`` / ``gen_ai.output.messages`` growing with the conversation, 2 ``execute_tool`` spans)
  posted one item per request by 4 concurrent httpx clients with a real ``ingest`` token.
* **ingest (b)**: the same items in ``{"items": [...]}`` batches of 50, from 2 clients (the exporter's way: its
  sending queue has 2 workers by default).
* **claim → decision**: a fresh database with N pre-ingested items (20 % ``dual_approval``, 30 %
  ``factual_verification``, 50 % ``spot_check``; about 1 in 10 rejected with a reason), drained by 8 reviewer threads,
  each with its own reviewer token and httpx client: ``POST /v1/review-items/claim-next`` then
  ``POST /v1/review-items/{id}/decision`` with the item's full checklist, until every item is done. Afterwards the
  store is checked: every item done with the planned outcome, two distinct approvers on every approved
  ``dual_approval`` item, no approval round decided twice, and audit entries matching what the clients saw.
* **sessions** (SQLite only): 10k conversations of 5 traces each (``--sessions N``; 2k with ``--quick``), written
  straight into a migrated store, each reviewed as one session item, then 500 sessions opened (``SessionStore.get``:
  every trace with its spans), 500 session items opened as the API builds their detail (the session's traces and one
  conversation across them) and 50 pages listed, plain and filtered by user and status, in this process; p50/p99
  printed (target: open under 100 ms p99).

The service (``ReviewServer``: uvicorn on loopback) runs in a subprocess of its own (this file with a hidden
``--serve`` flag), as it would in production, so the clients in this process do not share its GIL; its CPU time is
read from ``/proc``. Always exits 0: a benchmark reports, it does not assert.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SEED = 20241125
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
INGEST_CLIENTS = 4  # (a): one item per request
BATCH_CLIENTS = 2  # (b): the exporter's sending queue has 2 workers (num_consumers) by default
BATCH = 50
REVIEWERS = 8
FLOOR_TXN = 50  # rows per transaction of the floor
FLOOR_ROUNDS = 3  # rounds of the floor before the API runs, and again after them
HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
JSON_HEADERS = {"content-type": "application/json"}

# ---------------------------------------------------------------------------------------------------------------------
# Corpus: one agent trace per item (invoke_agent -> chat, execute_tool, chat, execute_tool, chat)

from corpus import ANSWERS, CARRIERS, QUESTIONS, SYSTEM_PROMPTS  # noqa: E402
from corpus import fill as _fill  # noqa: E402

TOOLS = ("get_order_status", "get_shipment_tracking", "lookup_customer", "check_inventory", "refund_order")
REASONS = ("unpinned_model", "sensitive_tool:refund_order", "sensitive_topic:finance", "pii_redacted", "long_session")
MODELS = ("gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18")
RESOURCE = {
    "service.name": "support-agent",
    "service.version": "1.14.2",
    "deployment.environment.name": "production",
    "telemetry.sdk.language": "python",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": "1.38.0",
    "host.name": "agent-7c9f5b6d4-x2k8p",
    "cloud.region": "eu-west-1",
}
SCOPE = {"name": "spanguard.instrumentation.openai", "version": "0.1.0"}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _text(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": content}]}


@dataclass
class Plan:
    """What the reviewers will decide on an item: approve, or reject with ``reason`` (dual items: by the first)."""

    outcome: str
    reason: str | None = None


@dataclass
class Item:
    trace_id: str
    tier: str
    body: dict[str, Any]
    plan: Plan


def make_item(index: int, seed: int, tier: str, risk: str) -> Item:
    """One review item: an agent trace of 6 spans, as the review exporter posts it."""
    rng = random.Random(seed * 1_000_003 + index)
    trace = f"{rng.getrandbits(128) | 1:032x}"
    ids = [f"{rng.getrandbits(64) | 1:016x}" for _ in range(6)]
    model = rng.choice(MODELS)
    t0 = 1_732_550_400_000_000_000 + index * 10_000_000_000
    system = _dumps([{"type": "text", "content": rng.choice(SYSTEM_PROMPTS)}])
    history: list[dict[str, Any]] = [_text("user", _fill(rng.choice(QUESTIONS), rng))]
    reasons = rng.sample(REASONS, rng.randrange(1, 3))
    spans: list[dict[str, Any]] = []
    clock = t0 + 5_000_000

    def span(n: int, name: str, kind: str, start: int, end: int, attributes: dict[str, Any]) -> None:
        spans.append(
            {
                "trace_id": trace,
                "span_id": ids[n],
                "parent_span_id": ids[0] if n else None,
                "name": name,
                "kind": kind,
                "start_time_unix_nano": start,
                "end_time_unix_nano": end,
                "status": {"code": "unset", "message": ""},
                "attributes": attributes,
                "events": [],
                "resource": RESOURCE,
                "scope": SCOPE,
            }
        )

    tools = rng.sample(TOOLS, 2)
    for call in range(3):
        start, clock = clock, clock + rng.randrange(400, 2500) * 1_000_000
        if call < 2:
            call_id = f"call_{rng.getrandbits(96):024x}"
            arguments = {"order_id": f"ORD-{rng.randrange(100000, 999999)}", "include_history": call == 1}
            output = {
                "role": "assistant",
                "parts": [{"type": "tool_call", "id": call_id, "name": tools[call], "arguments": arguments}],
                "finish_reason": "tool_call",
            }
        else:
            output = {**_text("assistant", _fill(rng.choice(ANSWERS), rng)), "finish_reason": "stop"}
        input_tokens = 180 + 60 * len(history) + rng.randrange(40)
        span(
            1 + 2 * call,
            f"chat {model}",
            "client",
            start,
            clock,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "gen_ai.response.model": model,
                "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(120):030x}",
                "gen_ai.request.temperature": 0.2,
                "gen_ai.response.finish_reasons": [output["finish_reason"]],
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": 20 + rng.randrange(90),
                "gen_ai.system_instructions": system,
                "gen_ai.input.messages": _dumps(history),
                "gen_ai.output.messages": _dumps([output]),
                "server.address": "api.openai.com",
                "server.port": 443,
                "spanguard.model.pinned": True,
            },
        )
        history.append({k: v for k, v in output.items() if k != "finish_reason"})
        if call < 2:
            start, clock = clock, clock + rng.randrange(20, 300) * 1_000_000
            result = {
                "status": rng.choice(("in_transit", "delivered", "packed", "returned")),
                "carrier": rng.choice(CARRIERS),
                "last_scan": f"2024-11-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:15:00Z",
                "events": [f"scan {n}: regional hub {rng.randrange(100)}" for n in range(rng.randrange(1, 4))],
            }
            span(
                2 + 2 * call,
                f"execute_tool {tools[call]}",
                "internal",
                start,
                clock,
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": tools[call],
                    "gen_ai.tool.call.id": call_id,
                    "gen_ai.tool.call.arguments": _dumps(arguments),
                    "gen_ai.tool.call.result": _dumps(result),
                },
            )
            history.append(
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": call_id, "response": _dumps(result)}]}
            )
    spans.insert(
        0,
        {
            "trace_id": trace,
            "span_id": ids[0],
            "parent_span_id": None,
            "name": "invoke_agent support_agent",
            "kind": "internal",
            "start_time_unix_nano": t0,
            "end_time_unix_nano": clock + 3_000_000,
            "status": {"code": "unset", "message": ""},
            "attributes": {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "support_agent",
                "gen_ai.provider.name": "openai",
                "spanguard.risk.tier": risk,
                "spanguard.risk.reasons": reasons,
                "spanguard.review.tier": tier,
            },
            "events": [],
            "resource": RESOURCE,
            "scope": SCOPE,
        },
    )
    body = {"trace_id": trace, "tier": tier, "risk_tier": risk, "reasons": reasons, "spans": spans}
    if rng.random() < (0.2 if tier == "dual_approval" else 0.1):
        plan = Plan("reject", rng.choice(("factually_incorrect", "policy_violation", "wrong_tool_use", "tone")))
    else:
        plan = Plan("approve")
    return Item(trace, tier, body, plan)


def make_items(count: int, seed: int) -> list[Item]:
    """``count`` items: 20 % dual_approval (red), 30 % factual_verification (yellow), 50 % spot_check (mixed)."""
    items = []
    for index in range(count):
        slot = index % 10
        if slot < 2:
            tier, risk = "dual_approval", "red"
        elif slot < 5:
            tier, risk = "factual_verification", "yellow"
        else:
            tier, risk = "spot_check", ("green", "yellow")[slot % 2]
        items.append(make_item(index, seed, tier, risk))
    random.Random(seed).shuffle(items)
    return items


# ---------------------------------------------------------------------------------------------------------------------
# Databases


def fresh_database(kind: str, workdir: Path, label: str) -> tuple[str, Callable[[], None]]:
    """A fresh, empty database of ``kind``: its URL and how to drop it. Raises when PostgreSQL is not reachable."""
    if kind == "sqlite":
        path = workdir / f"{label}.db"
        return f"sqlite:///{path}", lambda: None
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"bench_review_{uuid.uuid4().hex[:12]}"
    try:
        with engine.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {name}"))
    finally:
        engine.dispose()

    def drop() -> None:
        engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        finally:
            engine.dispose()

    return f"{PG_ADMIN}?options=-csearch_path%3D{name}", drop


def postgres_problem() -> str | None:
    """None when PostgreSQL answers at PG_ADMIN, else why not (one line)."""
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(PG_ADMIN, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as error:
        return f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"


# ---------------------------------------------------------------------------------------------------------------------
# The service, in a subprocess


def serve_main(url: str) -> int:
    """The hidden ``--serve URL`` mode: run ReviewServer on a free loopback port, print it and whether accepted
    connections get TCP_NODELAY (without it every response waits ~40 ms for a delayed ACK), then serve until stdin
    closes."""
    import socket

    from spanguard.review.cli import ReviewServer
    from spanguard.review.config import ServiceConfig
    from spanguard.review.store import ReviewStore

    config = ServiceConfig(db=url)
    store = ReviewStore(url, config.policy)
    server = ReviewServer(config, store, host="127.0.0.1", port=0)
    server.start()
    listeners = [sock for s in getattr(server._server, "servers", []) for sock in s.sockets]
    # asyncio sets TCP_NODELAY on an accepted connection only when its proto is IPPROTO_TCP, and a listener made with
    # socket.socket(family, SOCK_STREAM) has proto 0; Linux copies the listener's own TCP_NODELAY to what it accepts.
    inherited = all(
        sock.proto == socket.IPPROTO_TCP or sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        for sock in listeners
    )
    print(server.port, "nodelay" if listeners and inherited else "nagle", flush=True)
    sys.stdin.read()
    server.shutdown()
    store.shutdown()
    return 0


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ  # utime, stime
    except (OSError, IndexError, ValueError):
        return float("nan")


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


class Service:
    """``spanguard review``'s ReviewServer in a subprocess on ``url``; ``base`` is its loopback URL."""

    def __init__(self, url: str, log: Path) -> None:
        self.log_path = log
        self._log = open(log, "wb")
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        port, _, socket_mode = self.process.stdout.readline().decode().strip().partition(" ")
        if not port.isdigit():
            self.stop()
            raise RuntimeError(f"the review service did not start: {self.log_tail() or 'no output'}")
        self.base = f"http://127.0.0.1:{port}"
        self.nodelay = socket_mode == "nodelay"

    def cpu(self) -> float:
        return _cpu_seconds(self.process.pid)

    def log_tail(self, lines: int = 6) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def errors_logged(self) -> int:
        try:
            return self.log_path.read_text(errors="replace").count("Traceback (most recent call last)")
        except OSError:
            return 0

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                assert self.process.stdin is not None
                self.process.stdin.close()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _client(base: str, token: str) -> Any:
    import httpx

    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)


class Tally:
    """Thread-safe counts of HTTP outcomes (status codes, transport errors) and retries."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n


def post(client: Any, path: str, body: bytes | None, tally: Tally, what: str, retries: int = 5) -> Any:
    """POST, retrying transport errors and 5xx (counted under ``what``) a few times, as the exporter would."""
    import httpx

    for attempt in range(retries + 1):
        try:
            if body is None:
                response = client.post(path)
            else:
                response = client.post(path, content=body, headers=JSON_HEADERS)
        except httpx.TransportError as error:
            tally.add(f"retry {what}: {type(error).__name__}")
            if attempt == retries:
                raise
            time.sleep(0.05 * (attempt + 1))
            continue
        if response.status_code >= 500 and attempt < retries:
            tally.add(f"retry {what}: HTTP {response.status_code}")
            time.sleep(0.05 * (attempt + 1))
            continue
        return response
    raise AssertionError("unreachable")


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


# ---------------------------------------------------------------------------------------------------------------------
# Ingestion


@dataclass
class IngestResult:
    key: str
    title: str
    items: int
    seconds: float
    requests: int = 0
    latencies: list[float] = field(default_factory=list)  # per request, seconds
    server_cpu: float = float("nan")
    client_cpu: float = float("nan")
    rounds: list[float] = field(default_factory=list)  # the floor: items/s per round
    errors: dict[str, int] = field(default_factory=dict)
    refused: int = 0  # requests that ended in a non-200 answer after the retries

    @property
    def rate(self) -> float:
        if self.rounds:  # the floor: the median round (the machine's disk is shared, so rounds vary)
            return statistics.median(self.rounds)
        return self.items / self.seconds if self.seconds else 0.0


def floor_rows(store: Any, items: Sequence[Item]) -> list[dict[str, Any]]:
    """The rows ``ReviewStore._ingest_one`` writes for new items (built here, outside the measured time)."""
    from spanguard.review import store as store_module

    rows = []
    for item in items:
        body = item.body
        spans = list({s.get("span_id"): s for s in reversed(body["spans"])}.values())[::-1]
        models, preview = store_module._summary(spans)
        reasons = list(dict.fromkeys(body["reasons"]))
        rows.append(
            {
                "trace_id": item.trace_id,
                "tier": item.tier,
                "risk_tier": body["risk_tier"],
                "risk_rank": store_module._RISK_RANK.get(body["risk_tier"], 0),
                "reasons": reasons,
                "reasons_index": store_module._index(reasons),
                "spans": spans,
                "models": models,
                "models_index": store_module._index(models),
                "preview": preview,
                "status": "pending",
                "approvals": [],
            }
        )
    return rows


def measure_floor(engine: Any, rows: Sequence[dict[str, Any]]) -> float:
    """Seconds to insert ``rows`` with ``insert(ReviewItem)`` executemany, one transaction per FLOOR_TXN rows."""
    from sqlalchemy import insert

    from spanguard.review.store import ReviewItem

    statement = insert(ReviewItem)
    start = time.perf_counter()
    for offset in range(0, len(rows), FLOOR_TXN):
        with engine.begin() as connection:
            connection.execute(statement, list(rows[offset : offset + FLOOR_TXN]))
    return time.perf_counter() - start


def run_ingest(
    service: Service, token: str, bodies: Sequence[bytes], per_request: int, clients: int, key: str, title: str
) -> IngestResult:
    """Post the pre-encoded ``bodies`` (each ``per_request`` items) from ``clients`` threads; items/s over the run."""
    tally = Tally()
    latencies: list[list[float]] = [[] for _ in range(clients)]
    refused = [0] * clients
    next_body = iter(range(len(bodies)))
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def work(n: int) -> None:
        with _client(service.base, token) as client:
            client.get("/v1/me")  # connect and authenticate once, outside the measured window
            barrier.wait()
            while True:
                with lock:
                    index = next(next_body, None)
                if index is None:
                    return
                started = time.perf_counter()
                try:
                    response = post(client, "/v1/review-items", bodies[index], tally, "ingest")
                except Exception as error:  # counted and shown; the other clients go on
                    refused[n] += 1
                    tally.add(f"ingest: {type(error).__name__}")
                    continue
                latencies[n].append(time.perf_counter() - started)
                if response.status_code != 200:
                    refused[n] += 1
                    tally.add(f"ingest: final HTTP {response.status_code}")

    threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    cpu0, own0, start = service.cpu(), _own_cpu(), time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    return IngestResult(
        key=key,
        title=title,
        items=len(bodies) * per_request,
        seconds=seconds,
        requests=len(bodies),
        latencies=[x for per in latencies for x in per],
        server_cpu=service.cpu() - cpu0,
        client_cpu=_own_cpu() - own0,
        errors=dict(tally.counts),
        refused=sum(refused),
    )


# ---------------------------------------------------------------------------------------------------------------------
# Claim -> decision


@dataclass
class ReviewResult:
    items: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # claim start -> decision response, seconds
    decisions: int = 0
    claims: int = 0  # claim-next answered 200
    releases: int = 0  # dual_approval items handed back to the reviewer who had already approved them
    idle_polls: int = 0  # claim-next answered 204 before the last item was done (the rest held by other reviewers)
    server_cpu: float = float("nan")
    client_cpu: float = float("nan")
    errors: dict[str, int] = field(default_factory=dict)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    expected_decisions: int = 0
    per_reviewer: dict[str, int] = field(default_factory=dict)
    stalled: bool = False

    @property
    def rate(self) -> float:
        return self.decisions / self.seconds if self.seconds else 0.0


def decision_body(item: dict[str, Any], plan: Plan) -> bytes:
    """The decision a reviewer sends: the tier's whole checklist answered, ratings, and a reason when rejecting."""
    checklist = {name: True for name in item["checklist"]}
    if plan.outcome == "reject":
        if "factual_accuracy" in checklist:
            checklist["factual_accuracy"] = False
        body: dict[str, Any] = {
            "outcome": "reject",
            "reason": plan.reason,
            "reason_text": "The answer does not match the tool result.",
            "ratings": {"thumbs": "down", "likert": 2},
            "checklist": checklist,
            "comment": "Sent back to the prompt owners.",
        }
    else:
        body = {"outcome": "approve", "ratings": {"thumbs": "up", "likert": 4}, "checklist": checklist}
    return json.dumps(body).encode()


def run_reviews(service: Service, tokens: dict[str, str], items: Sequence[Item], deadline_s: float) -> ReviewResult:
    """Drain the queue with one thread per reviewer token: claim-next -> decision until every item is done."""
    plans = {item.trace_id: item.plan for item in items}
    result = ReviewResult(items=len(items))
    result.expected_decisions = sum(
        2 if item.tier == "dual_approval" and item.plan.outcome == "approve" else 1 for item in items
    )
    tally = Tally()
    lock = threading.Lock()
    state = {"done": 0, "decisions": 0, "claims": 0, "releases": 0, "empty": 0}
    latencies: dict[str, list[float]] = {name: [] for name in tokens}
    finished = threading.Event()
    barrier = threading.Barrier(len(tokens) + 1)
    stop_at = [float("inf")]

    def bump(key: str, n: int = 1) -> None:
        with lock:
            state[key] += n
            if key == "done" and state["done"] >= len(items):
                finished.set()

    def reviewer(name: str, token: str) -> None:
        with _client(service.base, token) as client:
            me = client.get("/v1/me").json()
            if (me.get("name"), me.get("role")) != (name, "reviewer"):
                tally.add(f"/v1/me answered {me}")
            barrier.wait()
            while not finished.is_set() and time.perf_counter() < stop_at[0]:
                try:
                    review_one(client, name)
                except Exception as error:  # counted and shown; the other reviewers go on
                    tally.add(f"reviewer: {type(error).__name__}: {str(error)[:80]}")
                    time.sleep(0.05)

    def review_one(client: Any, name: str) -> None:
        started = time.perf_counter()
        claim = post(client, "/v1/review-items/claim-next", None, tally, "claim-next")
        if claim.status_code == 204:
            bump("empty")  # the queue looks empty, but items may still be held by others: wait a little
            time.sleep(0.005)
            return
        if claim.status_code != 200:
            tally.add(f"claim-next: final HTTP {claim.status_code}")
            return
        bump("claims")
        item = claim.json()
        if name in item["approvals"]:
            # claim-next handed back a dual_approval item this reviewer already approved: give it back.
            released = post(client, f"/v1/review-items/{item['id']}/release", None, tally, "release")
            if released.status_code != 200:
                tally.add(f"release: final HTTP {released.status_code}")
            bump("releases")
            return
        decided = post(
            client,
            f"/v1/review-items/{item['id']}/decision",
            decision_body(item, plans[item["trace_id"]]),
            tally,
            "decision",
        )
        elapsed = time.perf_counter() - started
        if decided.status_code != 200:
            tally.add(f"decision: final HTTP {decided.status_code}")
            return
        latencies[name].append(elapsed)
        bump("decisions")
        if decided.json()["status"] == "done":
            bump("done")

    threads = [threading.Thread(target=reviewer, args=kv, daemon=True) for kv in tokens.items()]
    for thread in threads:
        thread.start()
    barrier.wait()
    cpu0, own0, start = service.cpu(), _own_cpu(), time.perf_counter()
    stop_at[0] = start + deadline_s
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - start
    result.server_cpu = service.cpu() - cpu0
    result.client_cpu = _own_cpu() - own0
    result.latencies = [x for per in latencies.values() for x in per]
    result.per_reviewer = {name: len(per) for name, per in latencies.items()}
    result.decisions, result.claims = state["decisions"], state["claims"]
    result.releases = state["releases"]
    result.idle_polls = state["empty"]
    result.errors = dict(tally.counts)
    result.stalled = not finished.is_set()
    return result


def verify(store: Any, items: Sequence[Item], result: ReviewResult) -> list[tuple[str, bool, str]]:
    """Check through the store what the reviewers did: outcomes, dual approvals, rounds, and the audit log."""
    from sqlalchemy import select

    from spanguard.review.store import AuditEntry, DecisionRecord, ReviewItem

    by_trace = {item.trace_id: item for item in items}
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(ReviewItem.id, ReviewItem.trace_id, ReviewItem.status, ReviewItem.outcome, ReviewItem.approvals)
        ).all()
        decisions = connection.execute(
            select(DecisionRecord.item_id, DecisionRecord.reviewer, DecisionRecord.outcome).order_by(DecisionRecord.id)
        ).all()
        audit = connection.execute(
            select(AuditEntry.item_id, AuditEntry.actor, AuditEntry.action).order_by(AuditEntry.id)
        ).all()
    checks: list[tuple[str, bool, str]] = []
    trace_of = {row.id: row.trace_id for row in rows}

    # 1. every item done, with the planned outcome
    not_done = [row.id for row in rows if row.status != "done"]
    wrong = [
        row.id
        for row in rows
        if row.status == "done" and row.outcome != by_trace[row.trace_id].plan.outcome  # type: ignore[index]
    ]
    ok = len(rows) == len(items) and not not_done and not wrong
    checks.append(
        (
            "every item is done, with the planned outcome",
            ok,
            f"{len(rows) - len(not_done)}/{len(items)} done"
            + (f", {len(wrong)} with another outcome" if wrong else "")
            + (f", not done e.g. {not_done[:5]}" if not_done else ""),
        )
    )

    # 2. dual approval: two distinct approvers, recorded as two approve decisions by two reviewers
    per_item: dict[int, list[tuple[str, str]]] = {}
    for d in decisions:
        per_item.setdefault(d.item_id, []).append((d.reviewer, d.outcome))
    dual = [row for row in rows if by_trace[row.trace_id].tier == "dual_approval" and row.outcome == "approve"]
    bad_dual = [
        row.id
        for row in dual
        if len(row.approvals or []) != 2
        or len(set(row.approvals)) != 2
        or sorted(r for r, o in per_item.get(row.id, []) if o == "approve") != sorted(row.approvals)
    ]
    checks.append(
        (
            "dual_approval items approved by two distinct reviewers",
            bool(dual) and not bad_dual,
            f"{len(dual) - len(bad_dual)}/{len(dual)}" + (f", bad e.g. {bad_dual[:5]}" if bad_dual else ""),
        )
    )

    # 3. no approval round decided twice: walking each item's audit trail, every decide follows a claim by the same
    #    reviewer with no decide in between; and each item has exactly the decisions its plan needs.
    holder: dict[int, str | None] = {}
    double: set[int] = set()
    for entry in audit:
        if entry.action == "claim":
            holder[entry.item_id] = entry.actor
        elif entry.action in ("release", "expire"):
            holder[entry.item_id] = None
        elif entry.action.startswith("decide:"):
            if holder.get(entry.item_id) != entry.actor:
                double.add(entry.item_id)
            holder[entry.item_id] = None
    miscounted = [
        item_id
        for item_id, trace in trace_of.items()
        if len(per_item.get(item_id, []))
        != (2 if by_trace[trace].tier == "dual_approval" and by_trace[trace].plan.outcome == "approve" else 1)
    ]
    checks.append(
        (
            "no approval round decided twice (audit: one decide per claim; decisions per item as planned)",
            not double and not miscounted,
            f"{len(decisions)} decisions for {len(rows)} items"
            + (f"; decided outside a claim: {sorted(double)[:5]}" if double else "")
            + (f"; wrong count: {miscounted[:5]}" if miscounted else ""),
        )
    )

    # 4. the audit log holds exactly the claims and decisions the clients were answered, nothing more
    actions = Counter(entry.action.partition(":")[0] for entry in audit)
    expected = {
        "ingest": len(items),
        "claim": result.claims,
        "decide": result.expected_decisions,
        "release": result.releases,
    }
    ok = all(actions.get(k, 0) == v for k, v in expected.items()) and set(actions) <= set(expected)
    ok = ok and result.decisions == result.expected_decisions
    shown = ", ".join(f"{k} {actions.get(k, 0)}/{v}" for k, v in expected.items())
    extra = {k: v for k, v in actions.items() if k not in expected}
    checks.append(
        (
            "audit log: claim and decide entries as expected",
            ok,
            shown
            + (f"; unexpected {dict(extra)}" if extra else "")
            + f"; decisions answered 200: {result.decisions}/{result.expected_decisions}",
        )
    )
    return checks


# ---------------------------------------------------------------------------------------------------------------------
# One database


@dataclass
class DbResult:
    kind: str
    floor: IngestResult | None = None
    ingest: list[IngestResult] = field(default_factory=list)
    review: ReviewResult | None = None
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    empty_latencies: list[float] = field(default_factory=list)  # GET /healthz, one client, sequential
    nodelay: bool | None = None  # whether the service's accepted connections get TCP_NODELAY


def empty_requests(service: Service, count: int = 60) -> list[float]:
    """Latencies of ``count`` sequential ``GET /healthz`` (no token, one SELECT 1): the HTTP hop on its own."""
    import httpx

    latencies = []
    with httpx.Client(base_url=service.base, timeout=30) as client:
        client.get("/healthz")
        for _ in range(count):
            started = time.perf_counter()
            client.get("/healthz").raise_for_status()
            latencies.append(time.perf_counter() - started)
    return latencies


def _encode_single(items: Sequence[Item]) -> list[bytes]:
    return [json.dumps(item.body, separators=(",", ":")).encode() for item in items]


def _encode_batches(items: Sequence[Item], size: int) -> list[bytes]:
    return [
        json.dumps({"items": [i.body for i in items[n : n + size]]}, separators=(",", ":")).encode()
        for n in range(0, len(items), size)
    ]


def run_database(kind: str, args: Any, workdir: Path, say: Callable[[str], None], status: Any) -> DbResult:
    from spanguard.review.config import ReviewPolicy
    from spanguard.review.store import ReviewStore

    result = DbResult(kind)
    drops: list[Callable[[], None]] = []
    seed = SEED + (0 if kind == "sqlite" else 1)
    try:
        # -- ingestion --------------------------------------------------------------------------------------------
        url, drop = fresh_database(kind, workdir, "ingest")
        drops.append(drop)
        store = ReviewStore(url, ReviewPolicy())
        store.migrate()
        token = store.create_token("collector", "ingest")
        corpus = make_items(args.single + args.batched + 2 * FLOOR_ROUNDS * args.floor + 20, seed)
        warmup, corpus = corpus[:20], corpus[20:]
        single, corpus = corpus[: args.single], corpus[args.single :]
        batched, corpus = corpus[: args.batched], corpus[args.batched :]
        floor_items = [corpus[n : n + args.floor] for n in range(0, len(corpus), args.floor)]
        bodies_single, bodies_batched = _encode_single(single), _encode_batches(batched, BATCH)
        size = sum(len(b) for b in bodies_single) / len(bodies_single)
        result.notes.append(
            f"items: {len(single[0].body['spans'])} spans, {size / 1024:.1f} KiB of JSON each "
            f"(chat input messages {min(_input_sizes(single))}-{max(_input_sizes(single))} B)"
        )
        with status(f"{kind}: building the floor's rows"):
            floor_sets = [floor_rows(store, chunk) for chunk in floor_items]
        floor_seconds = []
        with status(f"{kind}: floor, {FLOOR_ROUNDS} x {args.floor:,} rows"):
            for rows in floor_sets[:FLOOR_ROUNDS]:
                floor_seconds.append(measure_floor(store.engine, rows))
        service = Service(url, workdir / f"{kind}-ingest.log")
        result.nodelay = service.nodelay
        try:
            with _client(service.base, token) as client:  # warm-up: imports, connections, first statements
                for body in _encode_single(warmup):
                    client.post("/v1/review-items", content=body, headers=JSON_HEADERS).raise_for_status()
            result.empty_latencies = empty_requests(service)
            with status(f"{kind}: ingest (a), {len(single):,} items, 1 per request, {INGEST_CLIENTS} clients"):
                a = run_ingest(
                    service,
                    token,
                    bodies_single,
                    1,
                    INGEST_CLIENTS,
                    "a",
                    f"(a) 1 item/request x{INGEST_CLIENTS}",
                )
            say(f"{kind}: (a) {a.rate:,.0f} items/s")
            with status(f"{kind}: ingest (b), {len(batched):,} items, {BATCH} per request, {BATCH_CLIENTS} clients"):
                b = run_ingest(
                    service,
                    token,
                    bodies_batched,
                    BATCH,
                    BATCH_CLIENTS,
                    "b",
                    f"(b) {BATCH} items/request x{BATCH_CLIENTS}",
                )
            say(f"{kind}: (b) {b.rate:,.0f} items/s")
            result.ingest = [a, b]
            logged = service.errors_logged()
            if logged:
                result.notes.append(f"[red]the service logged {logged} exception(s)[/red]: {service.log_tail(3)}")
        finally:
            service.stop()
        with status(f"{kind}: floor again, {FLOOR_ROUNDS} x {args.floor:,} rows"):
            for rows in floor_sets[FLOOR_ROUNDS:]:
                floor_seconds.append(measure_floor(store.engine, rows))
        rounds = [len(rows) / seconds for rows, seconds in zip(floor_sets, floor_seconds, strict=True)]
        result.floor = IngestResult(
            key="floor",
            title=f"floor: Core insert, {FLOOR_TXN}/txn",
            items=sum(len(rows) for rows in floor_sets),
            seconds=sum(floor_seconds),
            rounds=rounds,
        )
        say(f"{kind}: floor {result.floor.rate:,.0f} items/s (rounds {', '.join(f'{r:,.0f}' for r in rounds)})")
        ingested = _count_items(store)
        expected = len(warmup) + len(single) + len(batched) + result.floor.items
        if ingested != expected:
            result.notes.append(f"[red]{ingested:,} items in the store, expected {expected:,}[/red]")
        store.shutdown()

        # -- claim -> decision ------------------------------------------------------------------------------------
        url, drop = fresh_database(kind, workdir, "review")
        drops.append(drop)
        store = ReviewStore(url, ReviewPolicy())
        store.migrate()
        items = make_items(args.review_items, seed + 100)
        with status(f"{kind}: pre-ingesting {len(items):,} items for review"):
            from spanguard.review.store import IngestItem

            for n in range(0, len(items), BATCH):
                store.ingest_many(
                    [
                        IngestItem(i.trace_id, i.tier, i.body["risk_tier"], i.body["reasons"], i.body["spans"])  # type: ignore[arg-type]
                        for i in items[n : n + BATCH]
                    ],
                    actor="collector",
                )
        tokens = {f"reviewer-{n + 1}": store.create_token(f"reviewer-{n + 1}", "reviewer") for n in range(REVIEWERS)}
        service = Service(url, workdir / f"{kind}-review.log")
        try:
            with status(f"{kind}: claim → decision, {len(items):,} items, {REVIEWERS} reviewers"):
                review = run_reviews(service, tokens, items, deadline_s=args.review_deadline)
            logged = service.errors_logged()
            if logged:
                result.notes.append(f"[red]the service logged {logged} exception(s)[/red]: {service.log_tail(3)}")
        finally:
            service.stop()
        if review.stalled:
            result.notes.append(f"[red]stopped after {args.review_deadline:.0f} s with items left[/red]")
        review.checks = verify(store, items, review)
        result.review = review
        say(
            f"{kind}: {review.decisions:,} decisions in {review.seconds:.1f} s, {review.rate:,.1f}/s, "
            f"p50 {_pct(review.latencies, 0.5) * 1000:.0f} ms"
        )
        store.shutdown()
    finally:
        for drop in drops:
            with contextlib.suppress(Exception):
                drop()
    return result


def _input_sizes(items: Sequence[Item]) -> list[int]:
    return [
        len(s["attributes"]["gen_ai.input.messages"])
        for item in items[:50]
        for s in item.body["spans"]
        if "gen_ai.input.messages" in s["attributes"]
    ]


def _count_items(store: Any) -> int:
    return sum(store.counts().values())


# ---------------------------------------------------------------------------------------------------------------------
# Report


def _verdict(ok: bool | None) -> str:
    if ok is None:
        return "[dim]N/A[/dim]"
    return "[green]PASS[/green]" if ok else "[red]FAIL[/red]"


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:,.1f}"


def report(console: Any, results: list[DbResult], args: Any) -> list[str]:
    """Print a table per database and the checks; return the summary lines."""
    from rich.table import Table

    summary: list[str] = []
    for r in results:
        console.print()
        if r.skipped:
            console.print(f"[yellow]{r.kind}: skipped: {r.skipped}[/yellow]")
            summary.append(f"{r.kind:<11} skipped: {r.skipped}")
            continue
        table = Table(title=f"review service on {r.kind}: ingestion", title_justify="left")
        for name, justify in (
            ("run", "left"),
            ("items", "right"),
            ("s", "right"),
            ("items/s", "right"),
            ("API cost (x floor)", "right"),
            ("ms/request p50", "right"),
            ("p99", "right"),
            ("service cores", "right"),
            ("service CPU ms/item", "right"),
            ("client cores", "right"),
            ("retried / refused", "right"),
        ):
            table.add_column(name, justify=justify, no_wrap=name == "run")  # type: ignore[arg-type]
        floor = r.floor
        if floor is not None:
            table.add_row(
                floor.title,
                f"{floor.items:,}",
                f"{floor.seconds:.1f}",
                f"{floor.rate:,.0f}",
                "1.00",
                "",
                "",
                "",
                "",
                "",
                "",
            )
        for run in r.ingest:
            retried = sum(v for k, v in run.errors.items() if k.startswith("retry "))
            cost = floor.rate / run.rate if floor is not None and run.rate else float("nan")
            table.add_row(
                run.title,
                f"{run.items:,}",
                f"{run.seconds:.1f}",
                f"{run.rate:,.0f}",
                f"{cost:.1f}",
                _ms(_pct(run.latencies, 0.5)),
                _ms(_pct(run.latencies, 0.99)),
                f"{run.server_cpu / run.seconds:.2f}",
                f"{run.server_cpu / run.items * 1000:.2f}",
                f"{run.client_cpu / run.seconds:.2f}",
                ("[red]" if retried or run.refused else "") + f"{retried} / {run.refused}",
            )
        console.print(table)
        if floor is not None:
            half = len(floor.rounds) // 2
            console.print(
                f"floor: median of {len(floor.rounds)} rounds of {floor.items // len(floor.rounds):,} rows, "
                f"before ({', '.join(f'{x:,.0f}' for x in floor.rounds[:half])} items/s) and after "
                f"({', '.join(f'{x:,.0f}' for x in floor.rounds[half:])}) the API runs; "
                f"API cost = floor items/s / API items/s"
            )
        if r.empty_latencies:
            console.print(
                f"an empty request (GET /healthz, one client, sequential): p50 {_ms(_pct(r.empty_latencies, 0.5))} ms, "
                f"min {_ms(min(r.empty_latencies))} ms; "
                + (
                    "accepted connections get TCP_NODELAY"
                    if r.nodelay
                    else "[red]accepted connections do not get TCP_NODELAY[/red] (ReviewServer.start's listener), so "
                    "each response waits for the client's delayed ACK"
                )
            )
        for run in r.ingest:
            if run.errors:
                console.print(f"  {run.title}: [red]{dict(run.errors)}[/red]")
        for note in r.notes:
            console.print(f"  {note}")

        rv = r.review
        if rv is None:
            continue
        table = Table(
            title=f"review service on {r.kind}: claim → decision, {REVIEWERS} reviewers", title_justify="left"
        )
        for name in (
            "items",
            "decisions",
            "s",
            "decisions/s",
            "round trip p50 ms",
            "p99 ms",
            "max ms",
            "service cores",
            "service CPU ms/decision",
            "own approvals handed back",
            "retried / failed",
        ):
            table.add_column(name, justify="right")
        retried = sum(v for k, v in rv.errors.items() if k.startswith("retry "))
        failed = sum(v for k, v in rv.errors.items() if not k.startswith("retry "))
        table.add_row(
            f"{rv.items:,}",
            f"{rv.decisions:,}",
            f"{rv.seconds:.1f}",
            f"{rv.rate:,.1f}",
            _ms(_pct(rv.latencies, 0.5)),
            _ms(_pct(rv.latencies, 0.99)),
            _ms(max(rv.latencies) if rv.latencies else float("nan")),
            f"{rv.server_cpu / rv.seconds:.2f}" if rv.seconds else "-",
            f"{rv.server_cpu / rv.decisions * 1000:.1f}" if rv.decisions else "-",
            f"{rv.releases:,}",
            ("[red]" if retried or failed else "") + f"{retried} / {failed}",
        )
        console.print(table)
        spread = sorted(rv.per_reviewer.values())
        if spread and rv.seconds:
            console.print(
                f"decisions per reviewer: {spread[0]}-{spread[-1]}; claim-next answered 204 {rv.idle_polls:,} times "
                f"before the last item was done (the rest held by others; the reviewer waits 5 ms and asks again); "
                f"client process {rv.client_cpu / rv.seconds:.2f} cores"
            )
        if rv.errors:
            console.print(f"  [red]{dict(rv.errors)}[/red]")
        for text, ok, detail in rv.checks:
            console.print(f"  {_verdict(ok)}  {text}: {detail}")

        a = next((x for x in r.ingest if x.key == "a"), None)
        b = next((x for x in r.ingest if x.key == "b"), None)
        lines = []
        if floor is not None and a is not None and b is not None:
            lines.append(
                f"ingest: {a.rate:,.0f} items/s one per request (x{INGEST_CLIENTS} clients), {b.rate:,.0f} items/s in "
                f"batches of {BATCH} (x{BATCH_CLIENTS}); bare write {floor.rate:,.0f} items/s, so the API costs "
                f"{floor.rate / a.rate:.1f}x / {floor.rate / b.rate:.1f}x the bare write"
            )
        passed = sum(1 for _, ok, _ in rv.checks if ok)
        max_s = max(rv.latencies) if rv.latencies else float("nan")
        lines.append(
            f"claim → decision (x{REVIEWERS} reviewers): {rv.rate:,.1f} decisions/s; round trip "
            f"p50 {_pct(rv.latencies, 0.5) * 1000:,.0f} ms, p99 {_pct(rv.latencies, 0.99) * 1000:,.0f} ms, "
            f"max {max_s * 1000:,.0f} ms; checks {passed}/{len(rv.checks)} PASS"
            + (f"; {retried + failed} requests retried or failed" if retried or failed else "")
        )
        if r.empty_latencies:
            lines.append(
                f"empty request (GET /healthz): p50 {_pct(r.empty_latencies, 0.5) * 1000:.1f} ms"
                + ("" if r.nodelay else " (accepted connections without TCP_NODELAY)")
            )
        summary.append(f"{r.kind:<11} " + lines[0])
        summary.extend(f"{'':<11} {line}" for line in lines[1:])
    return summary


# ---------------------------------------------------------------------------------------------------------------------
# Main


# ---------------------------------------------------------------------------------------------------------------------
# Sessions: listing and opening on SQLite (docs/review.md, "Sessions")

SESSION_TRACES = 5  # traces (turns) per session
SESSION_TEMPLATES = 50  # distinct realistic traces, reused with new ids (building 50k agent traces would dominate)


@dataclass
class SessionBench:
    sessions: int
    traces: int
    build_s: float
    open_latencies: list[float] = field(default_factory=list)  # SessionStore.get, seconds
    list_latencies: list[float] = field(default_factory=list)  # SessionStore.list (a page of 50), seconds
    filtered_latencies: list[float] = field(default_factory=list)  # SessionStore.list(user=..., status=pending)
    item_latencies: list[float] = field(default_factory=list)  # a session item's detail, as the API builds it


def run_sessions(workdir: Path, sessions: int, say: Callable[[str], None]) -> SessionBench:
    """``sessions`` conversations of SESSION_TRACES traces each, written straight into a migrated SQLite store (rows as
    ``ReviewStore._ingest_one`` writes them), then sessions opened and pages listed in random order."""
    from sqlalchemy import insert, select, text

    from spanguard.review.conversation import session_conversation
    from spanguard.review.sessions import SessionStore
    from spanguard.review.store import ReviewItem, ReviewStore, session_trace_id

    url, _ = fresh_database("sqlite", workdir, "sessions")
    store = ReviewStore(url)
    store.migrate()
    templates = floor_rows(store, make_items(SESSION_TEMPLATES, SEED + 1))
    rng = random.Random(SEED)
    started = time.perf_counter()
    statement = insert(ReviewItem)
    keys = [f"conv-{index:06d}" for index in range(sessions)]
    for first in range(0, sessions, 200):
        rows = []
        for index in range(first, min(sessions, first + 200)):
            for turn in range(SESSION_TRACES):
                template = templates[(index * SESSION_TRACES + turn) % len(templates)]
                trace = f"{rng.getrandbits(128) | 1:032x}"
                shift = turn * 60 * 10**9  # a turn a minute
                spans = [
                    {
                        **span,
                        "trace_id": trace,
                        "start_time_unix_nano": span.get("start_time_unix_nano", 0) + shift,
                        "end_time_unix_nano": span.get("end_time_unix_nano", 0) + shift,
                        "attributes": {
                            **(span.get("attributes") or {}),
                            "gen_ai.conversation.id": keys[index],
                            "user.id": f"user-{index % 500}",
                        },
                    }
                    for span in template["spans"]
                ]
                rows.append(
                    {
                        **template,
                        "trace_id": trace,
                        "spans": spans,
                        "conversation_id": keys[index],
                        "user_id": f"user-{index % 500}",
                        "session_key": keys[index],
                    }
                )
        units = [
            {
                **templates[index % len(templates)],
                "kind": "session",
                "trace_id": session_trace_id(keys[index], 1),
                "spans": [],
                "conversation_id": keys[index],
                "user_id": f"user-{index % 500}",
                "session_key": None,
            }
            for index in range(first, min(sessions, first + 200))
        ]
        with store.engine.begin() as connection:
            connection.execute(statement, rows)
            connection.execute(statement, units)
    with store.engine.begin() as connection:  # every session reviewed as one (docs/review.md, "Review by session")
        connection.execute(
            text(
                "UPDATE review_items SET session_item_id = (SELECT s.id FROM review_items s WHERE s.kind = 'session'"
                " AND s.conversation_id = review_items.session_key) WHERE kind = 'trace'"
            )
        )
        unit_ids = list(connection.scalars(select(ReviewItem.id).where(ReviewItem.kind == "session")))
    result = SessionBench(sessions, sessions * SESSION_TRACES, time.perf_counter() - started)
    say(f"sessions: wrote {result.traces} traces in {result.build_s:.0f} s; opening and listing")
    reader = SessionStore(store)
    for _ in range(20):  # warm the page cache and the connection pool, unmeasured
        reader.get(rng.choice(keys))
    for _ in range(500):
        key = rng.choice(keys)
        start = time.perf_counter()
        opened = reader.get(key)
        result.open_latencies.append(time.perf_counter() - start)
        assert opened.turns == SESSION_TRACES, key  # a wrong answer fast is no result
    for _ in range(500):
        unit_id = rng.choice(unit_ids)
        start = time.perf_counter()
        traces, _ = reader.review_context(store.get(unit_id))
        conversation = session_conversation([(t.trace_id, t.spans or []) for t in traces])
        result.item_latencies.append(time.perf_counter() - start)
        assert len(conversation["trace_ids"]) == SESSION_TRACES, unit_id
    pages = max(1, sessions // 50)
    for _ in range(50):
        start = time.perf_counter()
        reader.list(limit=50, offset=50 * rng.randrange(pages))
        result.list_latencies.append(time.perf_counter() - start)
        start = time.perf_counter()
        reader.list(user=f"user-{rng.randrange(500)}", status="pending", limit=50)
        result.filtered_latencies.append(time.perf_counter() - start)
    store.shutdown()
    return result


def report_sessions(console: Any, result: SessionBench) -> list[str]:
    """Print the sessions table; return its summary line."""
    from rich.table import Table

    table = Table(
        title=f"sessions on sqlite: {result.sessions} sessions of {SESSION_TRACES} traces ({result.traces} items)",
        title_justify="left",
    )
    for name in ("run", "calls", "p50 ms", "p99 ms", "max ms"):
        table.add_column(name, justify="left" if name == "run" else "right")
    for name, values in (
        ("open a session (all its traces, with spans)", result.open_latencies),
        ("open a session item (its conversation across traces)", result.item_latencies),
        ("list a page of 50 (random offset)", result.list_latencies),
        ("list a user's pending sessions", result.filtered_latencies),
    ):
        table.add_row(name, str(len(values)), _ms(_pct(values, 0.5)), _ms(_pct(values, 0.99)), _ms(max(values)))
    console.print()
    console.print(table)
    p99 = _pct(result.open_latencies, 0.99)
    item_p99 = _pct(result.item_latencies, 0.99)
    target = "under" if max(p99, item_p99) < 0.1 else "OVER"
    return [
        f"sessions    open p50 {_ms(_pct(result.open_latencies, 0.5))} ms, p99 {_ms(p99)} ms; session item p99 "
        f"{_ms(item_p99)} ms ({target} the 100 ms target); list p99 {_ms(_pct(result.list_latencies, 0.99))} ms; "
        f"{result.sessions} sessions of {SESSION_TRACES} traces on sqlite"
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer items (about 40 s)")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both", help="which store(s)")
    parser.add_argument("--json", metavar="PATH", help="also write the raw numbers as JSON")
    parser.add_argument("--sessions", type=int, metavar="N", help="sessions of the session run (10000; 0: none)")
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve_main(args.serve)

    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 160)
    args.single = 250 if args.quick else 1000
    args.batched = 500 if args.quick else 2000
    args.floor = 150 if args.quick else 400
    args.review_items = 200 if args.quick else 800
    args.review_deadline = 120.0
    started = time.monotonic()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results: list[DbResult] = []
    with tempfile.TemporaryDirectory(prefix="spanguard-bench-review-") as tmp:
        for kind in kinds:
            if kind == "postgresql":
                problem = postgres_problem()
                if problem is not None:
                    from sqlalchemy.engine import make_url

                    where = make_url(PG_ADMIN)
                    reason = (
                        f"PostgreSQL at {where.host}:{where.port or 5432} (database {where.database}) "
                        f"is not reachable: {problem}"
                    )
                    results.append(DbResult(kind, skipped=reason))
                    continue
            try:
                results.append(run_database(kind, args, Path(tmp), console.print, console.status))
            except Exception as error:  # one store failing must not hide the other's numbers
                console.print(f"[red]{kind}: error: {type(error).__name__}: {error}[/red]")
                results.append(DbResult(kind, skipped=f"error: {type(error).__name__}: {error}"))
    summary = report(console, results, args)
    if args.sessions is None:
        args.sessions = 2000 if args.quick else 10_000
    sessions = None
    if args.sessions > 0:
        with tempfile.TemporaryDirectory(prefix="spanguard-bench-sessions-") as tmp, console.status("sessions"):
            try:
                sessions = run_sessions(Path(tmp), args.sessions, console.print)
            except Exception as error:  # a failing run is reported, the other numbers stand
                console.print(f"[red]sessions: error: {type(error).__name__}: {error}[/red]")
        if sessions is not None:
            summary += report_sessions(console, sessions)
    elapsed = time.monotonic() - started
    console.print()
    console.print("[bold]summary[/bold]")
    header = (
        f"review service ({'quick' if args.quick else 'default'} run, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, service in its own process" + ")"
    )
    console.print(header, markup=False, highlight=False, soft_wrap=True)
    for line in summary:
        console.print("  " + line, markup=False, highlight=False, soft_wrap=True)
    console.print(f"\n[dim]total {elapsed:.0f} s[/dim]")
    if args.json:
        data = {
            "args": {k: v for k, v in vars(args).items() if k != "serve"},
            "elapsed_s": elapsed,
            "summary": summary,
            "databases": [_jsonable(r) for r in results],
            "sessions": None
            if sessions is None
            else {
                "sessions": sessions.sessions,
                "traces": sessions.traces,
                "build_s": sessions.build_s,
                **{
                    f"{name}_{q}_s": _pct(values, p)
                    for name, values in (
                        ("open", sessions.open_latencies),
                        ("list", sessions.list_latencies),
                        ("list_filtered", sessions.filtered_latencies),
                        ("open_session_item", sessions.item_latencies),
                    )
                    for q, p in (("p50", 0.5), ("p99", 0.99))
                },
            },
        }
        Path(args.json).write_text(json.dumps(data, indent=2, default=str))
        console.print(f"[dim]wrote {args.json}[/dim]")
    return 0


def _jsonable(r: DbResult) -> dict[str, Any]:
    def ingest(run: IngestResult) -> dict[str, Any]:
        return {
            **{k: v for k, v in run.__dict__.items() if k != "latencies"},
            "items_per_s": run.rate,
            "latency_p50_s": _pct(run.latencies, 0.5),
            "latency_p99_s": _pct(run.latencies, 0.99),
        }

    review = None
    if r.review is not None:
        rv = r.review
        review = {
            **{k: v for k, v in rv.__dict__.items() if k != "latencies"},
            "decisions_per_s": rv.rate,
            "p50_s": _pct(rv.latencies, 0.5),
            "p99_s": _pct(rv.latencies, 0.99),
            "max_s": max(rv.latencies) if rv.latencies else None,
        }
    return {
        "db": r.kind,
        "skipped": r.skipped,
        "floor": ingest(r.floor) if r.floor else None,
        "ingest": [ingest(run) for run in r.ingest],
        "review": review,
        "notes": r.notes,
    }


if __name__ == "__main__":
    sys.exit(main())
