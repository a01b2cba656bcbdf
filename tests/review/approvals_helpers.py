"""What the approvals API tests share: a running review service, an approval body, and a webhook receiver."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from spanguard.review.cli import ReviewServer
from spanguard.review.config import ServiceConfig
from spanguard.review.store import ReviewStore

DIGEST = "ab" * 32
PII = "John Smith, john@example.com"


@dataclass
class Service:
    """A running review service with a token of each role."""

    url: str
    store: ReviewStore
    server: ReviewServer
    tokens: dict[str, str]

    def client(self, who: str | None, timeout: float = 30) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    @property
    def waiting(self) -> int:
        """How many long polls this replica has waiting."""
        return self.server.app.state.approvals.waiters.count()


def start_service(db_url: str, tokens: dict[str, str] | None = None, **settings: Any) -> Service:
    """A review service on ``db_url`` (migrated), with new tokens unless ``tokens`` (of another replica) are given."""
    config = ServiceConfig(db=db_url, **settings)
    store = ReviewStore(db_url, config.policy)
    store.migrate()
    if tokens is None:
        tokens = {
            "ingest": store.create_token("agent", "ingest"),
            "alice": store.create_token("alice", "reviewer"),
            "bob": store.create_token("bob", "reviewer"),
            "admin": store.create_token("root", "admin"),
        }
    server = ReviewServer(config, store, port=0)
    server.start()
    return Service(f"http://127.0.0.1:{server.port}", store, server, tokens)


def stop_service(service: Service) -> None:
    service.server.shutdown()
    service.store.shutdown()


def approval_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "request_key": str(uuid.uuid4()),
        "action": "issue_refund",
        "tier": "yellow",
        "approvals_required": 1,
        "reasons": ["amount > 100"],
        "digest": DIGEST,
        "arguments": {"order_id": "ORD-7Q-KX", "amount": 913.37, "note": PII},
        "session_id": "conv-1",
        "trace_id": uuid.uuid4().hex,
        "span_id": uuid.uuid4().hex[:16],
        "state": {"messages": [{"role": "user", "content": PII}], "tool_calls": [], "context": {}, "models": []},
        "soft_timeout_s": 900,
        "hard_timeout_s": 14400,
        "on_hard_timeout": "deny",
    }
    body.update(changes)
    return body


def until(condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "the condition") -> Any:
    """Poll ``condition`` until it is truthy; fail (rather than hang) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {timeout:g}s")


@dataclass
class Hook:
    """A webhook receiver on loopback: the JSON bodies it was posted, and the status it answers."""

    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


def webhook_receiver() -> Iterator[Hook]:
    """Run a tiny HTTP server on 127.0.0.1 that records every POST's JSON body."""
    hook = Hook("")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the handler's method name
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                hook.posts.append(json.loads(body))
            self.send_response(hook.status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
