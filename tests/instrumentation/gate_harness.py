"""A real review service on loopback for the gate tests, and a reviewer that decides through its API."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from spanguard.review.cli import ReviewServer
from spanguard.review.config import ServiceConfig
from spanguard.review.store import ReviewStore


@dataclass
class Service:
    """The review service, its store and one token per role and reviewer."""

    store: ReviewStore
    base: str
    tokens: dict[str, str]
    server: ReviewServer

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return httpx.request(method, f"{self.base}{path}", headers=headers, timeout=70, **kwargs)

    def approvals(self, status: str | None = None) -> list[dict[str, Any]]:
        params = {"status": status} if status else {}
        response = self.call("alice", "GET", "/v1/approvals", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        return body["items"]

    def wait_for_pending(self, action: str, timeout: float = 30.0) -> dict[str, Any]:
        """The first pending request for ``action``, once it exists."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [a for a in self.approvals("pending") if a["action"] == action]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no pending approval for {action} within {timeout}s")

    def decide(self, who: str, approval_id: str, outcome: str, **body: Any) -> httpx.Response:
        return self.call(who, "POST", f"/v1/approvals/{approval_id}/decision", json={"outcome": outcome, **body})

    def shutdown(self) -> None:
        self.server.shutdown()
        self.store.shutdown()


def start_service(db_url: str, **approvals: Any) -> Service:
    """A migrated store and a running service, with ``approvals`` settings (timers, webhook)."""
    config = ServiceConfig(db=db_url, approvals=approvals) if approvals else ServiceConfig(db=db_url)
    store = ReviewStore(db_url, config.policy)
    store.migrate()
    tokens = {
        "agent": store.create_token("support-agent", "ingest"),
        "alice": store.create_token("alice", "reviewer"),
        "bob": store.create_token("bob", "reviewer"),
    }
    server = ReviewServer(config, store, port=0)
    server.start()
    return Service(store, f"http://127.0.0.1:{server.port}", tokens, server)


def reviewer(service: Service, action: str, decide: Callable[[dict[str, Any]], None]) -> threading.Thread:
    """A thread that waits for ``action``'s request and calls ``decide`` with it (as a person would, later)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            decide(service.wait_for_pending(action))
        except BaseException as error:  # surfaced by join_reviewer
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def join_reviewer(thread: threading.Thread) -> None:
    thread.join(timeout=60)
    assert not thread.is_alive(), "the reviewer thread did not finish"
    errors = thread.errors  # type: ignore[attr-defined]
    if errors:
        raise errors[0]


@dataclass
class Webhook:
    """A real HTTP endpoint receiving the service's notifications."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def start_webhook() -> Webhook:
    import json

    hook = Webhook("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            hook.received.append(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook.server = server
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    return hook
