"""Plants labelled values in every place a span can carry them, through the real SDKs and by hand.

Values are grouped in *bundles* of a few values of different kinds. Each (bundle, location) is one *slot* and one
trace: a ``support.turn`` root span around whatever puts the bundle's values in that location (an ``openai`` or
``anthropic`` SDK call against the fake provider, an ``@spanguard.tool`` call, or hand-made spans). A slot records
its trace id, so what arrives can be searched trace by trace (see ``detect.py``).

The resource locations need a tracer provider per slot (the resource is the provider's): ``Planter`` asks its
``provider_for(resource)`` callback for one, so the caller decides what processors (and redaction) it has.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import Status, StatusCode

import spanguard

from .detect import readable_span_strings
from .generator import CleanValue, Planted

__all__ = [
    "CLEAN_LOCATIONS",
    "LOCATIONS",
    "SCAFFOLDING",
    "SDK_LOCATIONS",
    "Planter",
    "RecordingProcessor",
    "Slot",
    "bundles",
]

OPENAI_MODEL = "gpt-4o-2024-08-06"
ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"
SYSTEM = "You are a helpful support agent for Acme Shop."
SERVICE = "support-bot"
ROOT_SPAN = "support.turn"

#: Every location a value is planted in, in run order.
LOCATIONS: tuple[str, ...] = (
    "user_prompt",
    "system_instructions",
    "assistant_answer",
    "streamed_answer",
    "responses_input",
    "tool_call_arguments",
    "tool_result",
    "tool_span_arguments",
    "tool_span_result",
    "session_user_id",
    "span_event",
    "exception_event",
    "status_message",
    "array_attribute",
    "string_attribute",
    "db_query",
    "url_full",
    "named_key",
    "other_named_key",
    "span_name",
    "event_name",
    "attribute_key",
    "resource",
    "resource_env",
)

#: Locations filled through an LLM SDK call (openai or anthropic, alternating by bundle).
SDK_LOCATIONS: frozenset[str] = frozenset(LOCATIONS[:7]) | {"session_user_id"}

#: Where the clean corpus goes.
CLEAN_LOCATIONS: tuple[str, ...] = ("user_prompt", "tool_call_arguments", "string_attribute", "span_event")

#: PII-named keys a value of another kind is stored under (``other_named_key``).
OTHER_KEYS: tuple[str, ...] = (
    "user.email",
    "user.id",
    "enduser.id",
    "user.full_name",
    "customer.phone",
    "client.address",
    "user.name",
    "customer.ssn",
)

#: The fixed text of the spans around the values (not distinctive: see ``detect.Detector``).
SCAFFOLDING: tuple[str, ...] = (
    SYSTEM,
    SERVICE,
    ROOT_SPAN,
    OPENAI_MODEL,
    ANTHROPIC_MODEL,
    "Hello from the fake provider.",
    "Here is what I found for you.",
    "Please update my details.",
    "Look up my account please.",
    "update_customer lookup_customer customer profile fields note status updated",
    "SELECT id, status FROM customers WHERE",
    "https://api.acme-shop.com/v1/customers/search",
    "could not update the customer record",
    "lookup failed for",
    "first contact notify sent receipt to app.contact app.customer.notes app.customer.note app.note",
    "customer.message gen_ai.input.messages gen_ai.output.messages gen_ai.system_instructions",
    "gen_ai.tool.call.arguments gen_ai.tool.call.result spanguard.redaction.entities spanguard.redaction.count",
    "exception.message exception.stacktrace exception.type Traceback (most recent call last) ValueError",
    *OTHER_KEYS,
)


@dataclass
class Slot:
    """One (bundle, location): one trace."""

    index: int
    location: str
    values: tuple[Planted, ...] = ()
    clean: tuple[CleanValue, ...] = ()
    sdk: str = "-"
    trace_id: int = 0
    request_headers: list[dict[str, str]] = field(default_factory=list)
    """Headers of the LLM requests the slot made (``session_user_id`` checks the baggage header)."""

    @property
    def texts(self) -> list[str]:
        return [p.text for p in self.values] + [c.text for c in self.clean]


def bundles(values: Sequence[Planted], size: int) -> list[tuple[Planted, ...]]:
    """Values grouped ``size`` at a time, never two of one kind in a bundle (the kinds with most values first)."""
    queues: dict[str, list[Planted]] = defaultdict(list)
    for planted in values:
        queues[planted.kind].append(planted)
    out: list[tuple[Planted, ...]] = []
    while any(queues.values()):
        kinds = sorted((k for k, q in queues.items() if q), key=lambda k: (-len(queues[k]), k))[:size]
        out.append(tuple(queues[k].pop(0) for k in kinds))
    return out


class RecordingProcessor(SpanProcessor):
    """An app's own span processor: records the strings of every span it sees, at start and at end, by trace id."""

    def __init__(self) -> None:
        self.started: dict[int, list[list[str]]] = defaultdict(list)
        self.ended: dict[int, list[list[str]]] = defaultdict(list)

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started[span.context.trace_id].append(readable_span_strings(span))

    def on_end(self, span: Any) -> None:
        self.ended[span.context.trace_id].append(readable_span_strings(span))


@spanguard.tool
def update_customer(customer: dict[str, Any], note: str) -> dict[str, Any]:
    """Update a customer's record."""
    return {"status": "updated"}


_RECORDS: dict[str, dict[str, Any]] = {}


@spanguard.tool
def lookup_customer(customer_id: str) -> dict[str, Any]:
    """Find a customer's record."""
    return _RECORDS[customer_id]


def _record(values: Sequence[Planted], texts: Sequence[str]) -> dict[str, Any]:
    """The nested JSON a tool takes or returns: each value under the key that names its kind, and the phrases."""
    return {
        "customer": {
            "id": "C-1042",
            "profile": {"fields": [{p.json_key: p.value} for p in values]},
        },
        "note": "\n".join(texts),
    }


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Planter:
    """Runs slots: puts each slot's values in its location, through ``openai`` / ``anthropic`` clients or by hand."""

    def __init__(
        self,
        fake: Any,
        tracer_provider: Any,
        provider_for: Callable[[Resource], Any],
    ) -> None:
        import anthropic
        import openai

        self.fake = fake
        self.tracer = tracer_provider.get_tracer("support-app")
        self.provider_for = provider_for
        self.openai = openai.OpenAI(base_url=fake.openai_base_url, api_key="test-key", max_retries=0)
        self.anthropic = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test-key", max_retries=0)

    # --- running ------------------------------------------------------------------------------------------------------

    def run(self, slots: Sequence[Slot]) -> None:
        from fake_provider import text, tool_call

        self._text, self._tool_call = text, tool_call
        for slot in slots:
            handler = getattr(self, f"_{slot.location}")
            if slot.location in ("resource", "resource_env"):
                handler(slot)
                continue
            with self.tracer.start_as_current_span(ROOT_SPAN) as root:
                slot.trace_id = root.get_span_context().trace_id
                handler(slot)

    @staticmethod
    def slots(bundled: Sequence[tuple[Planted, ...]], locations: Sequence[str] = LOCATIONS) -> list[Slot]:
        out: list[Slot] = []
        for location in locations:
            for i, values in enumerate(bundled):
                sdk = ("openai" if i % 2 == 0 else "anthropic") if location in SDK_LOCATIONS else "-"
                if location in ("responses_input", "session_user_id"):
                    sdk = "openai"
                out.append(Slot(len(out), location, values, sdk=sdk))
        return out

    @staticmethod
    def clean_slots(clean: Sequence[CleanValue], size: int, start: int = 0) -> list[Slot]:
        out: list[Slot] = []
        groups = [tuple(clean[i : i + size]) for i in range(0, len(clean), size)]
        for location in CLEAN_LOCATIONS:
            for i, group in enumerate(groups):
                sdk = ("openai" if i % 2 == 0 else "anthropic") if location in SDK_LOCATIONS else "-"
                out.append(Slot(start + len(out), location, clean=group, sdk=sdk))
        return out

    # --- LLM calls ----------------------------------------------------------------------------------------------------

    def _chat(self, slot: Slot, messages: list[dict[str, Any]], system: str = SYSTEM, **kwargs: Any) -> None:
        if slot.sdk == "openai":
            openai_messages = [{"role": "system", "content": system}, *messages]
            self.openai.chat.completions.create(model=OPENAI_MODEL, messages=openai_messages, **kwargs)
        else:
            self.anthropic.messages.create(
                model=ANTHROPIC_MODEL, max_tokens=256, system=system, messages=messages, **kwargs
            )

    def _user_prompt(self, slot: Slot) -> None:
        self._chat(slot, [{"role": "user", "content": "\n".join(slot.texts)}])

    def _system_instructions(self, slot: Slot) -> None:
        system = SYSTEM + " Customer record:\n" + "\n".join(slot.texts)
        self._chat(slot, [{"role": "user", "content": "Please update my details."}], system=system)

    def _assistant_answer(self, slot: Slot) -> None:
        self.fake.script(self._text("Here is what I found for you.\n" + "\n".join(slot.texts)))
        self._chat(slot, [{"role": "user", "content": "Look up my account please."}])

    def _streamed_answer(self, slot: Slot) -> None:
        self.fake.script(self._text("Here is what I found for you.\n" + "\n".join(slot.texts)))
        messages = [{"role": "user", "content": "Look up my account please."}]
        if slot.sdk == "openai":
            stream = self.openai.chat.completions.create(
                model=OPENAI_MODEL,
                messages=[{"role": "system", "content": SYSTEM}, *messages],
                stream=True,
                stream_options={"include_usage": True},
            )
            for _ in stream:
                pass
        elif slot.index % 4 < 2:
            stream = self.anthropic.messages.create(
                model=ANTHROPIC_MODEL, max_tokens=256, system=SYSTEM, messages=messages, stream=True
            )
            for _ in stream:
                pass
        else:
            with self.anthropic.messages.stream(
                model=ANTHROPIC_MODEL, max_tokens=256, system=SYSTEM, messages=messages
            ) as stream:
                for _ in stream.text_stream:
                    pass

    def _responses_input(self, slot: Slot) -> None:
        joined = "\n".join(slot.texts)
        if slot.index % 2 == 0:
            self.openai.responses.create(model=OPENAI_MODEL, input=joined)
        else:
            self.openai.responses.create(
                model=OPENAI_MODEL,
                instructions=SYSTEM,
                input=[{"role": "user", "content": [{"type": "input_text", "text": joined}]}],
            )

    def _tool_call_arguments(self, slot: Slot) -> None:
        arguments = _record(slot.values, slot.texts)
        if slot.clean:
            arguments = {"customer": {"id": "C-1042", "notes": [c.value for c in slot.clean]}, "note": slot.texts}
        self.fake.script(self._tool_call("update_customer", arguments))
        self._chat(slot, [{"role": "user", "content": "Please update my details."}])

    def _tool_result(self, slot: Slot) -> None:
        result = json.dumps(_record(slot.values, slot.texts), ensure_ascii=False)
        if slot.sdk == "openai":
            call = {"id": "call_1", "type": "function", "function": {"name": "lookup_customer", "arguments": "{}"}}
            messages = [
                {"role": "user", "content": "Look up my account please."},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": result},
            ]
        else:
            messages = [
                {"role": "user", "content": "Look up my account please."},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_01", "name": "lookup_customer", "input": {}}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": result}]},
            ]
        self._chat(slot, messages)

    def _session_user_id(self, slot: Slot) -> None:
        for j, planted in enumerate(slot.values):
            with spanguard.session(id=f"conv-{slot.index}-{j}", user_id=planted.stored):
                self.openai.chat.completions.create(
                    model=OPENAI_MODEL, messages=[{"role": "user", "content": "Hello!"}]
                )
            if self.fake.requests:
                slot.request_headers.append(dict(self.fake.requests[-1].headers))

    # --- tools --------------------------------------------------------------------------------------------------------

    def _tool_span_arguments(self, slot: Slot) -> None:
        record = _record(slot.values, slot.texts)
        update_customer(customer=record["customer"], note=record["note"])

    def _tool_span_result(self, slot: Slot) -> None:
        key = f"C-{slot.index}"
        _RECORDS[key] = _record(slot.values, slot.texts)
        try:
            lookup_customer(key)
        finally:
            del _RECORDS[key]

    # --- hand-made spans ----------------------------------------------------------------------------------------------

    def _span_event(self, slot: Slot) -> None:
        with self.tracer.start_as_current_span("handle_message") as span:
            span.add_event("customer.message", {"message": "\n".join(slot.texts)})

    def _exception_event(self, slot: Slot) -> None:
        with self.tracer.start_as_current_span("update_record", record_exception=False) as span:
            try:
                raise ValueError("could not update the customer record: " + "\n".join(slot.texts))
            except ValueError as error:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, "ValueError"))

    def _status_message(self, slot: Slot) -> None:
        with self.tracer.start_as_current_span("lookup", set_status_on_exception=False) as span:
            span.set_status(Status(StatusCode.ERROR, "lookup failed for " + "\n".join(slot.texts)))

    def _array_attribute(self, slot: Slot) -> None:
        with self.tracer.start_as_current_span("handle_message") as span:
            span.set_attribute("app.customer.notes", ["first contact", *slot.texts])

    def _string_attribute(self, slot: Slot) -> None:
        with self.tracer.start_as_current_span("handle_message") as span:
            span.set_attribute("app.customer.note", "\n".join(slot.texts))

    def _db_query(self, slot: Slot) -> None:
        where = " OR ".join(f"{p.json_key} = {_sql_literal(p.value)}" for p in slot.values)
        attributes = {
            "db.system.name": "postgresql",
            "db.query.text": f"SELECT id, status FROM customers WHERE {where}",
        }
        with self.tracer.start_as_current_span("SELECT customers", attributes=attributes):
            pass

    def _url_full(self, slot: Slot) -> None:
        query = urlencode([(p.json_key, p.value) for p in slot.values])
        attributes = {
            "http.request.method": "GET",
            "url.full": f"https://api.acme-shop.com/v1/customers/search?{query}",
        }
        with self.tracer.start_as_current_span("GET", attributes=attributes):
            pass

    def _named_key(self, slot: Slot) -> None:
        attributes: dict[str, Any] = {p.attr_key: p.stored for p in slot.values}
        for p in slot.values:
            if p.attr_key == "http.request.header.authorization":
                attributes[p.attr_key] = [p.stored]  # semconv: header values are string arrays
        with self.tracer.start_as_current_span("handle_message", attributes=attributes):
            pass

    def _other_named_key(self, slot: Slot) -> None:
        attributes: dict[str, Any] = {}
        offset = slot.index
        for p in slot.values:
            for step in range(len(OTHER_KEYS)):
                key = OTHER_KEYS[(offset + step) % len(OTHER_KEYS)]
                if key != p.attr_key and key not in attributes:
                    attributes[key] = p.stored
                    offset += step + 1
                    break
        with self.tracer.start_as_current_span("handle_message", attributes=attributes):
            pass

    # Names and keys carry a value as apps write them there: with the words that say what it is (a passport number
    # or a date of birth is one only in its context, in a name as in a prompt).
    def _span_name(self, slot: Slot) -> None:
        for p in slot.values:
            with self.tracer.start_as_current_span(f"notify {_one_line(p.text)}"):
                pass

    def _event_name(self, slot: Slot) -> None:
        with self.tracer.start_as_current_span("send_receipt") as span:
            for p in slot.values:
                span.add_event(f"sent receipt: {_one_line(p.text)}")

    def _attribute_key(self, slot: Slot) -> None:
        with self.tracer.start_as_current_span("handle_message") as span:
            for p in slot.values:
                span.set_attribute(f"app.{p.attr_key}.{p.value}", True)

    # --- resource -----------------------------------------------------------------------------------------------------

    def _in_resource(self, slot: Slot, resource: Resource) -> None:
        provider = self.provider_for(resource)
        tracer = provider.get_tracer("support-app")
        with tracer.start_as_current_span(ROOT_SPAN) as root:
            slot.trace_id = root.get_span_context().trace_id
            with tracer.start_as_current_span("handle_message"):
                pass
        provider.force_flush()

    def _resource(self, slot: Slot) -> None:
        attributes = {"service.name": SERVICE, **{p.attr_key: p.stored for p in slot.values}}
        self._in_resource(slot, Resource.create(attributes))

    def _resource_env(self, slot: Slot) -> None:
        pairs = [f"service.name={SERVICE}"]
        pairs += [f"app.note.{i}={quote(text, safe='')}" for i, text in enumerate(slot.texts)]
        with _environ("OTEL_RESOURCE_ATTRIBUTES", ",".join(pairs)):
            resource = Resource.create()
        self._in_resource(slot, resource)


def _one_line(text: str) -> str:
    return " ".join(text.split())


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old
