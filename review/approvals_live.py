"""What runs beside the approvals routes: long-poll wakeups, the timers, and the escalation webhook.

:class:`Waiters` wakes the long polls of this process when a request changes (the store's ``on_change``, and on
PostgreSQL the :class:`NotifyListener`, which ``LISTEN``\\ s for changes made through other replicas). A long poll also
re-reads the store every few seconds, the safety net for a lost notification. :class:`TimerThread` fires the store's
timers; :class:`EscalationWebhook` announces an escalation (Slack-compatible JSON, never arguments or state) from a
background thread, with a timeout and a few retries. Behaviour: docs/gates.md ("In the review service").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy.engine import URL

from spanguard.review.approvals import NOTIFY_CHANNEL, ApprovalRequest, ApprovalStore, Timers

__all__ = ["EscalationWebhook", "NotifyListener", "TimerThread", "Waiters", "escalation_payload"]

logger = logging.getLogger("spanguard.review.approvals")


class _Watch:
    """One long poll's wakeup: an asyncio event on the poll's loop, set from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._event.set)
        except RuntimeError:  # the loop is closed: the poll is gone
            pass

    async def wait(self, timeout: float) -> bool:
        """Wait until woken or ``timeout``; True when woken. Cleared before returning, so no later wakeup is lost."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._event.clear()


class Waiters:
    """The long polls of this process, by request id: :meth:`notify` wakes those waiting on the ids given."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watches: dict[str, set[_Watch]] = {}
        self.closed = False

    @contextmanager
    def watch(self, approval_id: str) -> Iterator[_Watch]:
        """Watch ``approval_id`` from the running event loop (register before reading, so no change slips between)."""
        watch = _Watch(asyncio.get_running_loop())
        with self._lock:
            self._watches.setdefault(approval_id, set()).add(watch)
        try:
            yield watch
        finally:
            with self._lock:
                watches = self._watches.get(approval_id)
                if watches is not None:
                    watches.discard(watch)
                    if not watches:
                        del self._watches[approval_id]

    def notify(self, ids: Iterable[str]) -> None:
        """Wake the polls waiting on any of ``ids``."""
        with self._lock:
            woken = [watch for approval_id in ids for watch in self._watches.get(approval_id, ())]
        for watch in woken:
            watch.wake()

    def notify_all(self) -> None:
        """Wake every poll (after a reconnect, when notifications may have been missed)."""
        with self._lock:
            woken = [watch for watches in self._watches.values() for watch in watches]
        for watch in woken:
            watch.wake()

    def close(self) -> None:
        """Wake every poll and make them answer now: the service is stopping."""
        self.closed = True
        self.notify_all()

    def count(self) -> int:
        """How many long polls are waiting."""
        with self._lock:
            return sum(len(watches) for watches in self._watches.values())


class _Worker:
    """A daemon thread running ``run(stop)``; :meth:`stop` is idempotent and bounded."""

    name = "spanguard-approvals"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the thread (once)."""
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and wait at most ``timeout`` seconds for the thread to end (idempotent, safe before start)."""
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def run(self) -> None:
        raise NotImplementedError


class NotifyListener(_Worker):
    """One PostgreSQL connection ``LISTEN``\\ ing for changes; ``on_ids`` gets each changed id, ``on_reconnect`` is
    called whenever it (re)starts listening, since changes made while it was not may have been missed."""

    name = "spanguard-approvals-listen"

    def __init__(
        self,
        url: URL,
        on_ids: Callable[[list[str]], None],
        on_reconnect: Callable[[], None],
        *,
        poll_s: float = 0.5,
    ) -> None:
        super().__init__()
        # psycopg takes the libpq URL; the options (search_path) and credentials of the store's URL come along.
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._on_ids, self._on_reconnect, self._poll_s = on_ids, on_reconnect, poll_s
        self.listening = threading.Event()

    def run(self) -> None:
        import psycopg

        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._conninfo, autocommit=True, connect_timeout=5, application_name=self.name
                ) as connection:
                    connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.listening.set()
                    if backoff > 0.5:
                        logger.info("approvals: listening for changes again")
                    backoff = 0.5
                    self._on_reconnect()
                    while not self._stop.is_set():
                        ids = [notify.payload for notify in connection.notifies(timeout=self._poll_s)]
                        if ids:
                            self._on_ids(ids)
            except Exception as error:  # the database is down or restarted: long polls fall back on re-reading
                self.listening.clear()
                if backoff == 0.5:
                    logger.warning("approvals: LISTEN connection failed (%s); retrying", type(error).__name__)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        self.listening.clear()


class TimerThread(_Worker):
    """Calls ``approvals.fire_timers()`` every ``interval_s`` and hands what it changed to ``on_fired``."""

    name = "spanguard-approvals-timers"

    def __init__(self, approvals: ApprovalStore, interval_s: float, on_fired: Callable[[Timers], None]) -> None:
        super().__init__()
        self._approvals, self._interval_s, self._on_fired = approvals, interval_s, on_fired

    def run(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                fired = self._approvals.fire_timers()
                if fired.escalated or fired.timed_out:
                    self._on_fired(fired)
                if failing:
                    logger.info("approvals: timers running again")
                failing = False
            except Exception as error:  # logged once per outage, not every interval
                if not failing:
                    logger.warning("approvals: firing timers failed (%s); retrying", type(error).__name__)
                failing = True
            self._stop.wait(self._interval_s)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


def _slack_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def page_link(page_url: str | None, approval_id: str) -> str | None:
    """The reviewers' page link for a request (``{id}`` in ``page_url`` is replaced by its id)."""
    return page_url.replace("{id}", approval_id) if page_url else None


def escalation_payload(request: ApprovalRequest, *, page_url: str | None, now: dt.datetime) -> dict[str, Any]:
    """The webhook's JSON for an escalated request: Slack's ``text`` and structured fields, nothing of the call's
    arguments or the agent's state (they may hold personal data)."""
    waited = max(0.0, (now - request.created_at).total_seconds())
    link = page_link(page_url, request.id)
    text = (
        f"Approval request {request.id} ({request.tier}: {_slack_escape(request.action)}) has waited "
        f"{_duration(waited)} without a decision and is escalated to the top of the queue."
    )
    if link:
        text += f" <{link}|Open it>"
    return {
        "text": text,
        "event": "approval.escalated",
        "approval": {
            "id": request.id,
            "action": request.action,
            "tier": request.tier,
            "approvals_required": request.approvals_required,
            "approvals": len(request.approvers or []),
            "waited_s": round(waited, 3),
            "created_at": request.created_at.isoformat() + "Z",
            "hard_deadline": request.hard_deadline.isoformat() + "Z",
            "url": link,
        },
    }


class EscalationWebhook:
    """Posts escalations to ``url`` from background threads: each with ``timeout_s`` per attempt and ``retries``
    retries; a failure is logged with the request's id and the kind of error only, and counted by ``on_failure``."""

    def __init__(
        self,
        url: str,
        *,
        page_url: str | None = None,
        timeout_s: float = 5.0,
        retries: int = 3,
        on_failure: Callable[[], None] | None = None,
        backoff_s: float = 0.5,
    ) -> None:
        self.url, self.page_url, self.timeout_s, self.retries = url, page_url, timeout_s, retries
        self._on_failure, self._backoff_s = on_failure, backoff_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()

    def send(self, request: ApprovalRequest, now: dt.datetime) -> None:
        """Announce ``request``'s escalation, in the background."""
        if self._stop.is_set():
            return
        payload = escalation_payload(request, page_url=self.page_url, now=now)
        thread = threading.Thread(target=self._post, args=(request.id, payload), name="spanguard-webhook", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _post(self, approval_id: str, payload: dict[str, Any]) -> None:
        problem = "unknown"
        try:
            for attempt in range(self.retries + 1):
                try:
                    response = httpx.post(self.url, json=payload, timeout=self.timeout_s)
                    if response.is_success:
                        return
                    problem = f"HTTP {response.status_code}"
                    if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                        break  # the hook refuses this payload: asking again will not change that
                except httpx.HTTPError as error:
                    problem = type(error).__name__
                if attempt < self.retries and self._stop.wait(self._backoff_s * 2**attempt):
                    break
            logger.warning("approvals: the escalation webhook for %s failed (%s)", approval_id, problem)
            if self._on_failure is not None:
                self._on_failure()
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop retrying and wait at most ``timeout`` seconds for posts in flight (idempotent)."""
        self._stop.set()
        with self._lock:
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
