"""Dataset export benchmark: reviewed items per second exported from a SQLite review store (target: 5,000/s).

A fresh SQLite store (migrated) is seeded with N reviewed items (default 100,000) straight through SQLAlchemy Core
bulk inserts (``insert(ReviewItem)`` and ``insert(DecisionRecord)``, executemany, 5,000 rows a transaction), before
the clock starts. The mix: 70 % one ``chat`` span (system, user, answer), 30 % an agent trace (a chat asking for a
tool, the tool span, a chat answering); 60 % approved, 25 % corrected, 15 % rejected; one in ten dual approval with two
decisions; one in five in a dataset with a tag (half of those are agent traces, so that run converts heavier
items than the others). Then, timed: ``export_rows`` for ``eval``, ``sft`` and ``preference``
over every item, each line encoded as the CLI writes it (to a file on the same disk), and ``eval --dataset``.
Prints items/s for each (sft and preference read only the items that can give
a row: corrected ones), wall-clock and per CPU second. Then ``--sessions`` session items (default 2,000) of five
traces each (each call resending the history, corrected at the third trace) are added and ``eval --unit session``
and ``sft --unit session`` are timed: each case threads its session's traces up to the corrected turn
(docs/datasets.md, "Multi-turn cases from sessions"). Always exits 0: a benchmark reports, it does not assert.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from spanguard.exporters.datasets import encode_line
from spanguard.review.datasets import DatasetCase, export_rows, parse_filter
from spanguard.review.store import DecisionRecord, ReviewItem, ReviewStore

CHUNK = 5_000
TARGET = 5_000
SESSION_TRACES = 5
T0 = 1_700_000_000_000_000_000
CHECKLIST = {"factual_accuracy": True, "policy_adherence": True, "tone": True}


def _messages(*messages: tuple[str, list[dict[str, Any]]]) -> str:
    return json.dumps([{"role": role, "parts": parts} for role, parts in messages])


def _chat(trace: str, span: str, start: int, inputs: str, outputs: str) -> dict[str, Any]:
    return {
        "trace_id": trace,
        "span_id": span,
        "parent_span_id": None,
        "name": "chat gpt-4o-mini",
        "kind": "client",
        "start_time_unix_nano": T0 + start,
        "end_time_unix_nano": T0 + start + 500_000_000,
        "status": {"code": "unset", "message": ""},
        "attributes": {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.input.messages": inputs,
            "gen_ai.output.messages": outputs,
        },
        "events": [],
        "resource": {"service.name": "bench"},
        "scope": {"name": "spanguard.instrumentation.openai", "version": "0.1.0"},
    }


def spans_of(n: int) -> list[dict[str, Any]]:
    """Item ``n``'s spans: one chat, or (every third or so) a tool-using agent trace."""
    trace = f"{n:032x}"
    system = ("system", [{"type": "text", "content": "You are a support agent for <PERSON:3f2a9c1b>'s shop."}])
    user = ("user", [{"type": "text", "content": f"Where is order A-{n}? My e-mail is <EMAIL_ADDRESS>."}])
    answer = ("assistant", [{"type": "text", "content": f"Order A-{n} ships tomorrow with DHL."}])
    if n % 10 >= 3:
        return [_chat(trace, f"{n:016x}", 0, _messages(system, user), _messages(answer))]
    call = {"type": "tool_call", "id": f"call_{n}", "name": "lookup_order", "arguments": {"order_id": f"A-{n}"}}
    result = {"type": "tool_call_response", "id": f"call_{n}", "response": '{"status": "shipped"}'}
    tool = {
        **_chat(trace, f"{n + 1:016x}", 600_000_000, "", ""),
        "name": "execute_tool lookup_order",
        "attributes": {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "lookup_order",
            "gen_ai.tool.call.arguments": json.dumps({"order_id": f"A-{n}"}),
            "gen_ai.tool.call.result": '{"status": "shipped"}',
        },
    }
    return [
        _chat(trace, f"{n:016x}", 0, _messages(system, user), _messages(("assistant", [call]))),
        tool,
        _chat(
            trace,
            f"{n + 2:016x}",
            1_200_000_000,
            _messages(system, user, ("assistant", [call]), ("tool", [result])),
            _messages(answer),
        ),
    ]


def seed(store: ReviewStore, count: int) -> None:
    """``count`` reviewed items with their decisions, and one in five in dataset ``bench`` (bulk inserts)."""
    now = dt.datetime(2026, 12, 1)
    for first in range(1, count + 1, CHUNK):
        numbers = range(first, min(first + CHUNK, count + 1))
        items, decisions, members = [], [], []
        for n in numbers:
            outcome = "approve" if n % 20 < 12 else "correct" if n % 20 < 17 else "reject"
            tier = "dual_approval" if n % 10 == 0 and outcome == "approve" else "spot_check"
            correction = f"Order A-{n} ships on Monday." if outcome == "correct" else None
            items.append(
                {
                    "id": n,
                    "trace_id": f"{n:032x}",
                    "tier": tier,
                    "risk_tier": "yellow",
                    "risk_rank": 1,
                    "reasons": ["sampled"],
                    "spans": spans_of(n),
                    "status": "done",
                    "created_at": now,
                    "updated_at": now,
                    "approvals": ["alice", "bob"] if tier == "dual_approval" else [],
                    "outcome": outcome,
                    "reasons_index": "|sampled|",
                    "models": ["gpt-4o-mini-2024-07-18"],
                    "models_index": "|gpt-4o-mini-2024-07-18|",
                    "preview": f"Where is order A-{n}?",
                    "golden": correction,
                    "decided_at": now,
                }
            )
            reviewers = ["alice", "bob"] if tier == "dual_approval" else ["alice"]
            for reviewer in reviewers:
                decisions.append(
                    {
                        "item_id": n,
                        "reviewer": reviewer,
                        "outcome": outcome,
                        "reason": "factually_incorrect" if outcome != "approve" else None,
                        "reason_text": None,
                        "correction": correction,
                        "ratings": {"likert": 1 + n % 5},
                        "checklist": CHECKLIST,
                        "comment": None,
                        "at": now,
                    }
                )
            if n % 5 == 0:
                members.append(
                    {
                        "dataset": "bench",
                        "item_id": n,
                        "tags": ["shipping"],
                        "tags_index": "|shipping|",
                        "added_by": "alice",
                        "added_at": now,
                    }
                )
        with store.engine.begin() as connection:
            connection.execute(insert(ReviewItem), items)
            connection.execute(insert(DecisionRecord), decisions)
            if members:
                connection.execute(insert(DatasetCase), members)


def _session_trace(trace: str, span: str, start: int, turn: int) -> list[dict[str, Any]]:
    history: list[tuple[str, list[dict[str, Any]]]] = [
        ("system", [{"type": "text", "content": "You are a support agent for <PERSON:3f2a9c1b>'s shop."}])
    ]
    for k in range(1, turn + 1):
        history.append(("user", [{"type": "text", "content": f"Question {k} about order A-{trace[-6:]}?"}]))
        if k < turn:
            history.append(("assistant", [{"type": "text", "content": f"Answer {k}: it ships tomorrow."}]))
    answer = ("assistant", [{"type": "text", "content": f"Answer {turn}: it ships tomorrow."}])
    return [_chat(trace, span, start, _messages(*history), _messages(answer))]


def seed_sessions(store: ReviewStore, first: int, count: int) -> None:
    """``count`` corrected session items of :data:`SESSION_TRACES` member traces each, ids from ``first`` on."""
    now = dt.datetime(2026, 12, 2)
    base = {
        "tier": "dual_approval",
        "risk_tier": "yellow",
        "risk_rank": 1,
        "reasons": ["sampled"],
        "status": "done",
        "created_at": now,
        "updated_at": now,
        "approvals": [],
        "outcome": "correct",
        "reasons_index": "|sampled|",
        "models": ["gpt-4o-mini-2024-07-18"],
        "models_index": "|gpt-4o-mini-2024-07-18|",
        "decided_at": now,
    }
    per = SESSION_TRACES + 1
    for start in range(0, count, CHUNK // per):
        items, decisions = [], []
        for c in range(start, min(start + CHUNK // per, count)):
            unit = first + c * per + SESSION_TRACES  # the session item comes after its members, as at ingestion
            conversation = f"bench-conv-{c}"
            traces = [f"{first + c * per + k:032x}" for k in range(SESSION_TRACES)]
            for k, trace in enumerate(traces):
                items.append(
                    {
                        **base,
                        "id": first + c * per + k,
                        "trace_id": trace,
                        "spans": _session_trace(trace, trace[:16], k * 10_000_000_000, k + 1),
                        "preview": f"Question {k + 1}",
                        "golden": "It ships on Monday." if k == 2 else None,
                        "conversation_id": conversation,
                        "session_key": conversation,
                        "kind": "trace",
                        "session_item_id": unit,
                    }
                )
            items.append(
                {
                    **base,
                    "id": unit,
                    "trace_id": f"{unit:032x}",
                    "spans": [],
                    "preview": "Question 1",
                    "golden": "It ships on Monday.",
                    "conversation_id": conversation,
                    "session_key": None,
                    "kind": "session",
                    "session_item_id": None,
                }
            )
            decisions.append(
                {
                    "item_id": unit,
                    "reviewer": "alice",
                    "outcome": "correct",
                    "reason": "factually_incorrect",
                    "reason_text": None,
                    "correction": "It ships on Monday.",
                    "ratings": {},
                    "checklist": CHECKLIST,
                    "comment": None,
                    "at": now,
                    "turn": traces[2],
                }
            )
        with store.engine.begin() as connection:
            connection.execute(insert(ReviewItem), items)
            connection.execute(insert(DecisionRecord), decisions)


def timed(store: ReviewStore, out: Path, kind: str, **filters: Any) -> tuple[int, int, float, float]:
    """(sources read, lines written, seconds, CPU seconds) of one export to ``out``, lines encoded as the CLI does."""
    started, cpu = time.perf_counter(), time.process_time()
    read = written = 0
    with out.open("w", encoding="utf-8") as handle:
        for line, count in export_rows(store, kind, parse_filter(**filters)):  # type: ignore[arg-type]
            read = count
            if line is not None:
                handle.write(encode_line(line) + "\n")
                written += 1
    return read, written, time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="reviewed items to seed (default 100,000)")
    parser.add_argument(
        "--sessions", type=int, default=2_000, help=f"session items of {SESSION_TRACES} traces (default 2,000)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = ReviewStore(f"sqlite:///{folder}/review.db")
        store.migrate()
        started = time.perf_counter()
        seed(store, args.items)
        print(f"seeded {args.items:,} reviewed items in {time.perf_counter() - started:.1f} s (not timed below)")
        runs = [("eval", {}), ("sft", {}), ("preference", {}), ("eval --dataset bench", {"dataset": "bench"})]
        for title, filters in runs:
            report(title, *timed(store, Path(folder) / "out.jsonl", title.split()[0], **filters))
        if args.sessions > 0:
            # Added after the runs above, so they time the same store as before session items existed.
            seed_sessions(store, args.items + 1, args.sessions)
            traces = args.sessions * SESSION_TRACES
            print(f"added {args.sessions:,} corrected session items of {traces:,} traces (not timed below)")
            for title in ("eval --unit session", "sft --unit session"):
                report(title, *timed(store, Path(folder) / "out.jsonl", title.split()[0], unit="session"))
        store.shutdown()


def report(title: str, read: int, written: int, seconds: float, cpu: float) -> None:
    """One run's line: items read and lines written, items per second of wall-clock time and per CPU second."""
    rate = read / seconds if seconds else float("inf")
    verdict = "meets" if rate >= TARGET else "BELOW"
    # CPU time too: on a shared machine the wall-clock rate also measures the neighbours.
    print(
        f"{title:<22} {read:>8,} items read, {written:>8,} lines, {seconds:6.1f} s: "
        f"{rate:8,.0f} items/s ({verdict} the {TARGET:,}/s target), {read / max(cpu, 1e-9):8,.0f} per CPU s"
    )


if __name__ == "__main__":
    main()
