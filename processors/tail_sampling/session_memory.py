"""What the cross-turn risk detectors remember about each session: digests, never content.

A bounded, per-process LRU of sessions with an idle TTL, holding each session's trace ids and SHA-256 digests of its
tool calls and questions. Behaviour: ``docs/risk.md`` ("The session memory").
"""

from __future__ import annotations

import hashlib
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["SessionMemory", "TurnFindings", "normalize_question", "question_digest", "tool_call_digest"]


# In ASCII, NFKC changes nothing, case-folding is lower-casing, and every character that is not a letter or a digit is
# punctuation, a symbol, a space or a control character: one table does what the general path does per character.
_ASCII_SPACES: Final = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalnum()})


def normalize_question(text: str) -> str:
    """``text`` compared as a question: NFKC, case-folded, punctuation and symbols as spaces, whitespace collapsed."""
    if text.isascii():
        return " ".join(text.lower().translate(_ASCII_SPACES).split())
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = (" " if unicodedata.category(char)[0] in "PSZC" else char for char in folded)
    return " ".join("".join(kept).split())


def question_digest(normalized: str) -> tuple[bytes, frozenset[int]]:
    """The SHA-256 of a normalised question and the 64-bit keyed hash of each of its words."""
    whole = hashlib.sha256(normalized.encode("utf-8")).digest()
    # Python's own string hash: SipHash under a key drawn per process, which is as far as this memory reaches. A
    # SHA-256 per word cost most of this detector's time and hid a single word no better.
    return whole, frozenset(map(hash, normalized.split()))


def tool_call_digest(tool: str, canonical_arguments: str) -> bytes:
    """The SHA-256 of a tool call: its name and its arguments as canonical JSON."""
    return hashlib.sha256(f"{tool}\x00{canonical_arguments}".encode()).digest()


@dataclass(frozen=True, slots=True)
class TurnFindings:
    """What a session's memory says about one of its traces, this trace included."""

    turns: int
    """Distinct traces of the session seen so far (within the memory's bounds)."""
    max_tool_call_traces: int
    """The most traces of the session that made one of this trace's tool calls."""
    repeated_question: bool
    """One of this trace's questions was answered by an earlier trace of the session."""


class _Session:
    __slots__ = ("last_seen", "questions", "tool_calls", "traces", "turns")

    def __init__(self, now: float) -> None:
        self.last_seen = now
        self.turns = 0
        self.traces: OrderedDict[str, None] = OrderedDict()
        self.tool_calls: OrderedDict[bytes, set[str]] = OrderedDict()
        self.questions: OrderedDict[bytes, tuple[str, frozenset[int]]] = OrderedDict()


def _jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def _bound(entries: OrderedDict, limit: int) -> None:
    while len(entries) > limit:
        entries.popitem(last=False)


class SessionMemory:
    """A bounded, thread-safe memory of sessions; see the module docstring."""

    def __init__(
        self,
        *,
        max_sessions: int,
        ttl_s: float,
        max_entries_per_session: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_sessions = max_sessions
        self._ttl = ttl_s
        self._max_entries = max_entries_per_session
        self._clock = clock
        self._sessions: OrderedDict[str, _Session] = OrderedDict()  # least recently seen first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._sessions)

    def __contains__(self, session: object) -> bool:
        with self._lock:
            self._expire(self._clock())
            return session in self._sessions

    def record(
        self,
        session: str,
        trace_id: str,
        *,
        tool_calls: Iterable[bytes] = (),
        questions: Iterable[tuple[bytes, frozenset[int]]] = (),
        answered: bool = False,
        similarity: float = 1.0,
        tool_call_cap: int = 2,
    ) -> TurnFindings:
        """Record one trace of ``session`` and say what it repeats of the session's earlier traces.

        ``tool_call_cap`` is the most traces counted per tool call (the detector's threshold: more changes nothing).
        A trace's questions are remembered only when it ``answered`` them.
        """
        with self._lock:
            now = self._clock()
            self._expire(now)
            state = self._sessions.get(session)
            if state is None:
                state = self._sessions[session] = _Session(now)
                _bound(self._sessions, self._max_sessions)
            else:
                self._sessions.move_to_end(session)
                state.last_seen = now

            if trace_id not in state.traces:
                state.turns += 1
            state.traces[trace_id] = None
            state.traces.move_to_end(trace_id)
            _bound(state.traces, self._max_entries)

            most = 0
            for digest in set(tool_calls):
                traces = state.tool_calls.get(digest)
                if traces is None:
                    traces = state.tool_calls[digest] = set()
                state.tool_calls.move_to_end(digest)
                if len(traces) < tool_call_cap:
                    traces.add(trace_id)
                most = max(most, len(traces) + (trace_id not in traces))
            _bound(state.tool_calls, self._max_entries)

            repeated = False
            asked = list(questions)
            for whole, tokens in asked:
                for earlier, (earlier_trace, earlier_tokens) in state.questions.items():
                    if earlier_trace == trace_id:
                        continue
                    if earlier == whole or _jaccard(tokens, earlier_tokens) >= similarity:
                        repeated = True
                        break
                if repeated:
                    break
            if answered:
                for whole, tokens in asked:
                    # The first trace that answered a question keeps it: a repeat never answers it "earlier".
                    if whole not in state.questions:
                        state.questions[whole] = (trace_id, tokens)
                _bound(state.questions, self._max_entries)
            return TurnFindings(state.turns, most, repeated)

    def _expire(self, now: float) -> None:
        sessions = self._sessions
        while sessions:
            oldest = next(iter(sessions.values()))
            if now - oldest.last_seen <= self._ttl:
                break
            sessions.popitem(last=False)
