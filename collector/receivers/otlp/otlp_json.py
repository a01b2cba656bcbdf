"""OTLP/JSON for traces, logs and metrics, as the OTLP specification defines it, over the official protobuf messages.

Decoding refuses bad input with a :class:`ValueError` naming the problem. The mapping's differences from protobuf's
JSON, and what is refused, are ``docs/collector-config.md`` (receiver ``otlp``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from spanguard.collector.signals import LOGS, SIGNALS, TRACES, Signal

__all__ = ["decode_request", "decode_response", "encode_message", "encode_request", "encode_response"]

MAX_NESTING = 100
"""Messages nested deeper than this are refused, as protobuf's binary decoder refuses them."""

_NESTED_FIELDS = re.compile(r"^((?:Failed to parse \w+ field: )+)")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_SPAN_ID_KEYS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
_LINK_ID_KEYS = ("traceId", "trace_id", "spanId", "span_id")
_OUT_SPAN_ID_KEYS = ("traceId", "spanId", "parentSpanId")
_OUT_LINK_ID_KEYS = ("traceId", "spanId")
_SIGNAL_OF: dict[type[Message], Signal] = {signal.request: signal for signal in SIGNALS.values()}


def decode_request(body: bytes | bytearray, signal: Signal = TRACES) -> Any:
    """Parse an OTLP/JSON export request of ``signal`` (traces unless told); raises :class:`ValueError` naming what
    is wrong."""
    what = signal.request.DESCRIPTOR.name
    data = _load_object(body, what)
    for path, obj, keys in _id_holders(data, signal, out=False):
        _convert_ids(obj, path, keys, _hex_to_base64)
    return _parse(data, signal.request())


def encode_request(request: Message) -> bytes:
    """OTLP/JSON for an export request of any signal, UTF-8, on one line (no newline inside, so it suits JSON lines)."""
    signal = _SIGNAL_OF[type(request)]
    data = json_format.MessageToDict(request, use_integers_for_enums=True)
    for path, obj, keys in _id_holders(data, signal, out=True):
        _convert_ids(obj, path, keys, _base64_to_hex)
    return _dump(data)


def decode_response(body: bytes | bytearray, signal: Signal = TRACES) -> Any:
    """Parse an OTLP/JSON export response of ``signal``; raises :class:`ValueError` naming what is wrong."""
    return _parse(_load_object(body, signal.response.DESCRIPTOR.name), signal.response())


def encode_response(response: Message) -> bytes:
    """OTLP/JSON for an export response of any signal (``{}`` when it is empty)."""
    return encode_message(response)


def encode_message(message: Message) -> bytes:
    """Any message without trace or span ids (a response, a ``google.rpc.Status``) in the OTLP/JSON mapping."""
    return _dump(json_format.MessageToDict(message, use_integers_for_enums=True))


def _load_object(body: bytes | bytearray, what: str) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"OTLP/JSON body is not valid UTF-8: byte 0x{body[error.start]:02x} at offset {error.start}"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"OTLP/JSON body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise ValueError(f"OTLP/JSON body nests deeper than {MAX_NESTING} levels") from None
    if not isinstance(data, dict):
        raise ValueError(f"OTLP/JSON body must be a JSON object (an {what}), not {_json_type(data)}")
    return data


def _parse(data: dict[str, Any], message: Message) -> Any:
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=True, max_recursion_depth=MAX_NESTING)
    except json_format.ParseError as error:
        if "too deep" in str(error):
            raise ValueError(f"OTLP/JSON body nests deeper than {MAX_NESTING} levels") from None
        reason = _reason(str(error))
        raise ValueError(f"invalid OTLP/JSON {message.DESCRIPTOR.name}: {_short(reason)}") from None
    except RecursionError:
        raise ValueError(f"OTLP/JSON body nests deeper than {MAX_NESTING} levels") from None
    except (TypeError, ValueError, AttributeError, UnicodeError) as error:  # a value protobuf cannot hold
        raise ValueError(f"invalid OTLP/JSON {message.DESCRIPTOR.name}: {_short(str(error))}") from None
    return message


def _dump(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _id_holders(data: dict[str, Any], signal: Signal, *, out: bool) -> Any:
    """(path, object, id keys) for every object of a request that holds trace or span ids; anything not shaped as
    expected is left for ``ParseDict`` to refuse."""
    if signal is TRACES:
        for path, span in _items(data, ("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"), ("spans",)):
            yield path, span, _OUT_SPAN_ID_KEYS if out else _SPAN_ID_KEYS
            links = _first(span, "links")
            if isinstance(links, list):
                for index, link in enumerate(links):
                    if isinstance(link, dict):
                        yield f"{path}.links[{index}]", link, _OUT_LINK_ID_KEYS if out else _LINK_ID_KEYS
    elif signal is LOGS:
        resources, scopes = ("resourceLogs", "resource_logs"), ("scopeLogs", "scope_logs")
        for path, record in _items(data, resources, scopes, ("logRecords", "log_records")):
            yield path, record, _OUT_LINK_ID_KEYS if out else _LINK_ID_KEYS
    else:
        resources, scopes = ("resourceMetrics", "resource_metrics"), ("scopeMetrics", "scope_metrics")
        for path, metric in _items(data, resources, scopes, ("metrics",)):
            for kind in _METRIC_KINDS:
                points = _first(metric, *kind)
                points = _first(points, "dataPoints", "data_points") if isinstance(points, dict) else None
                for p, point in enumerate(points if isinstance(points, list) else ()):
                    exemplars = _first(point, "exemplars") if isinstance(point, dict) else None
                    for e, exemplar in enumerate(exemplars if isinstance(exemplars, list) else ()):
                        if isinstance(exemplar, dict):
                            yield (
                                f"{path}.{kind[0]}.dataPoints[{p}].exemplars[{e}]",
                                exemplar,
                                (_OUT_LINK_ID_KEYS if out else _LINK_ID_KEYS),
                            )


_METRIC_KINDS = (("gauge",), ("sum",), ("histogram",), ("exponentialHistogram", "exponential_histogram"), ("summary",))


def _items(data: dict[str, Any], resources_keys: tuple[str, ...], scopes_keys: tuple[str, ...], items_keys: Any) -> Any:
    """(path, item dict) for every item of every scope of every resource."""
    resources = _first(data, *resources_keys)
    if not isinstance(resources, list):
        return
    for r, resource in enumerate(resources):
        scopes = _first(resource, *scopes_keys) if isinstance(resource, dict) else None
        if not isinstance(scopes, list):
            continue
        for s, scope in enumerate(scopes):
            items = _first(scope, *items_keys) if isinstance(scope, dict) else None
            if not isinstance(items, list):
                continue
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    yield f"{resources_keys[0]}[{r}].{scopes_keys[0]}[{s}].{items_keys[0]}[{i}]", item


def _first(obj: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in obj:
            return obj[key]
    return None


def _convert_ids(obj: dict[str, Any], path: str, keys: tuple[str, ...], convert: Any) -> None:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str):
            obj[key] = convert(value, f"{path}.{key}")


def _hex_to_base64(value: str, path: str) -> str:
    if not _HEX.fullmatch(value):
        raise ValueError(f"{path} must be a hex string (OTLP/JSON ids are hex, not base64); got {_short(value, 40)!r}")
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _base64_to_hex(value: str, path: str) -> str:
    try:
        return base64.b64decode(value, validate=True).hex()
    except binascii.Error:  # MessageToDict always writes valid base64; keep the value if not
        return value


def _reason(message: str) -> str:
    """``Failed to parse a field: Failed to parse b field: why`` as ``a.b: why``."""
    nested = _NESTED_FIELDS.match(message)
    if not nested:
        return message
    fields = re.findall(r"Failed to parse (\w+) field: ", nested.group(1))
    return f"{'.'.join(fields)}: {message[nested.end() :].rstrip('.')}"


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "a number"


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
