"""``make demo`` (examples/demo.py), run whole: the demo conversation lands as one session item in the review queue.

The demo's ports are fixed (docs: examples/demo.py); the test is skipped when one of them is taken, e.g. by a demo
left running. Its files go to a temporary ``SPANGUARD_DEMO_DIR``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from spanguard.review.store import ReviewStore

ROOT = Path(__file__).resolve().parents[2]
PORTS = (4317, 4318, 8080, 8888)  # the collector's OTLP gRPC and HTTP, the review service, the metrics
SESSION_LINE = re.compile(
    r"^session item #(\d+): conversation conv-002, dual_approval, risk red, 2 trace\(s\), "
    r"2 user turn\(s\) reviewed as one: http://127\.0\.0\.1:8080/#item=(\d+)$",
    re.MULTILINE,
)


def taken(port: int) -> bool:
    with socket.socket() as sock:
        # As the servers do: a port left in TIME_WAIT by an earlier run is free, a listening one is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@pytest.mark.timeout(300)
def test_make_demo_shows_the_demo_conversation_as_one_session_item(tmp_path):
    busy = [port for port in PORTS if taken(port)]
    if busy:
        pytest.skip(f"the demo's fixed ports are in use: {busy}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "SPANGUARD_"))}
    # Phoenix has its own end-to-end test (tests/collector/test_phoenix_e2e.py); here it would only add its start-up.
    env.update({"SPANGUARD_DEMO_DIR": str(tmp_path), "SPANGUARD_DEMO_PHOENIX": "off"})
    demo = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=280,
        cwd=ROOT,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = demo.stdout
    # Bob's two turns (the refund at the approval gate, then his follow-up question) are one session item.
    lines = [line for line in out.splitlines() if line.startswith("session item #")]
    assert len(lines) == 1, out[-3000:]
    match = SESSION_LINE.search(out)
    assert match and match.group(1) == match.group(2), lines
    assert "approved by demo-reviewer" in out
    # Why each of the four turns' traces was kept or dropped, from the collector's decision lines.
    assert "why each turn's trace was kept or dropped" in out
    assert "red: always kept, whole (approval_gate, rule:payment-tool" in out
    assert "its session turned red earlier: kept" in out
    assert re.search(r"dropped at the (yellow|green) rate [0-9.]+, because its\s", out), out[-4000:]
    assert "no decision in the collector's log" not in out
    # The command to serve the queue again is one line, whole, to copy.
    serve = next(line for line in out.splitlines() if " review serve --port 8080 --db sqlite:///" in line)
    assert serve.endswith("review.db") and serve.split()[0].endswith("spanguard")
    # A silent build: no setuptools warnings before the demo's output.
    assert "BuildBackendWarning" not in out + demo.stderr
    store = ReviewStore(f"sqlite:///{tmp_path / 'review.db'}")
    try:
        (unit,) = store.list(kind="session")
        assert (unit.id, unit.conversation_id, unit.tier, unit.risk_tier) == (
            int(match.group(1)),
            "conv-002",
            "dual_approval",
            "red",
        )
        members = store.members(unit.id)
        assert len(members) == 2 and {m.conversation_id for m in members} == {"conv-002"}
        assert [i.id for i in store.list()] == [unit.id]  # the queue: the session item, not its traces alone
    finally:
        store.shutdown()
