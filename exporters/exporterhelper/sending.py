"""What every exporter's sender shares: common settings, the :class:`Payload` it sends and the :class:`Sender` protocol.

An exporter type implements :class:`Sender` (how to send one request) and hands it to
:class:`~spanguard.exporters.exporterhelper.exporter.Exporter`. How to add one: docs/contributing.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal, Protocol

import pydantic
from google.protobuf.message import Message

from spanguard.collector.component import Batch
from spanguard.collector.signals import TRACES, Signal
from spanguard.durations import Duration

__all__ = [
    "Headers",
    "Payload",
    "SendResult",
    "Sender",
    "SendingQueueConfig",
    "SettingsModel",
    "Timeout",
    "encode_json",
    "partial_success",
]


# ---------------------------------------------------------------------------------------------------------------------
# Settings


class SettingsModel(pydantic.BaseModel, frozen=True, extra="forbid"):
    """Base of exporter settings: immutable, unknown keys refused."""


class SendingQueueConfig(SettingsModel):
    """``sending_queue``: bounded (``queue_size`` batches, waiting plus in flight), in memory or on disk."""

    enabled: bool = True
    """Queue batches and send them from worker threads; ``false`` sends inside ``consume`` (the client waits)."""
    queue_size: int = pydantic.Field(default=1000, ge=1)
    """Batches held at most, waiting plus in flight; a full queue pushes back on clients (they retry)."""
    storage: Literal["memory", "file"] = "memory"
    """``memory``, or ``file``: each batch is fsync'd to SQLite before it is acknowledged and survives a restart or
    ``kill -9``."""
    directory: str = ".spanguard/queue"
    """Where ``storage: file`` keeps ``<exporter id>.db`` (one store per exporter, locked against a second process)."""
    num_consumers: int = pydantic.Field(default=2, ge=1, le=256)
    """Worker threads sending from the queue in parallel."""


Timeout = Annotated[Duration, pydantic.Field(gt=0)]


def _check_headers(headers: dict[str, str]) -> dict[str, str]:
    for key, value in headers.items():
        if not key or any(ch.isspace() or ord(ch) < 33 or ch in ':()<>@,;\\"/[]?={}' for ch in key):
            raise ValueError(f"invalid header name {key!r}")
        if "\n" in value or "\r" in value:
            raise ValueError(f"invalid value for header {key!r}: line breaks are not allowed")
    return headers


Headers = Annotated[dict[str, str], pydantic.AfterValidator(_check_headers)]


# ---------------------------------------------------------------------------------------------------------------------
# Payloads and senders


class Payload:
    """One export request of one signal, as a message and/or its serialized bytes (each made from the other when
    first needed). ``spans`` counts its items: spans, log records or data points."""

    __slots__ = ("_data", "_request", "signal", "spans")

    def __init__(
        self,
        request: Message | None = None,
        data: bytes | None = None,
        spans: int | None = None,
        signal: Signal = TRACES,
    ) -> None:
        if request is None and data is None:
            raise ValueError("a payload needs a request or its bytes")
        self._request = request
        self._data = data
        self.signal = signal
        self.spans = spans if spans is not None else signal.count(signal.resources(self.request))

    @classmethod
    def of(cls, batch: Batch) -> Payload:
        """The export request for ``batch`` (its bytes as they are, for a batch still made of bytes)."""
        if batch.encoded is not None:
            return cls(data=batch.encoded, spans=batch.item_count, signal=batch.signal)
        signal = batch.signal
        return cls(signal.make_request(batch.resources), spans=batch.item_count, signal=signal)

    @classmethod
    def from_bytes(cls, data: bytes, signal: Signal = TRACES) -> Payload:
        """Parse serialized bytes (raises ``google.protobuf.message.DecodeError`` when they are not a request)."""
        return cls(signal.request.FromString(data), data, signal=signal)

    @property
    def request(self) -> Any:
        """The export request message (``Export{Trace,Logs,Metrics}ServiceRequest``)."""
        if self._request is None:
            assert self._data is not None
            self._request = self.signal.request.FromString(self._data)
        return self._request

    @property
    def data(self) -> bytes:
        """The serialized request."""
        if self._data is None:
            assert self._request is not None
            self._data = self._request.SerializeToString()
        return self._data


class SendResult:
    """What a backend said about a delivered request: spans it rejected (OTLP partial success), and why."""

    __slots__ = ("message", "rejected")

    def __init__(self, rejected: int = 0, message: str = "") -> None:
        self.rejected = rejected
        self.message = message


class Sender(Protocol):
    """Delivers one payload; raises :class:`SendError` (classified) or :class:`PermanentError`."""

    def start(self) -> None: ...

    def send(self, payload: Payload) -> SendResult: ...

    def close(self) -> None: ...


def partial_success(response: Any, signal: Signal = TRACES) -> SendResult:
    """What an OTLP export response's ``partial_success`` says (nothing rejected when it has none)."""
    if response.HasField("partial_success"):
        partial = response.partial_success
        return SendResult(int(getattr(partial, signal.rejected_field)), partial.error_message)
    return SendResult()


_json_encoder: Callable[[Message], bytes] | None = None


def encode_json(request: Message) -> bytes:
    """OTLP/JSON for ``request`` on one line (``spanguard.collector.receivers.otlp.otlp_json``)."""
    global _json_encoder
    if _json_encoder is None:
        from spanguard.collector.receivers.otlp.otlp_json import encode_request

        _json_encoder = encode_request
    data = _json_encoder(request)
    if b"\n" in data or b"\r" in data:  # one request per line, whatever the encoder's layout
        data = json.dumps(json.loads(data), separators=(",", ":"), ensure_ascii=False).encode()
    return data
