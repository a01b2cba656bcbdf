"""OTLP/JSON for traces, as the OTLP specification defines it, over the official ``opentelemetry-proto`` messages.

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
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = ["decode_request", "decode_response", "encode_message", "encode_request", "encode_response"]

MAX_NESTING = 100
"""Messages nested deeper than this are refused, as protobuf's binary decoder refuses them."""

_NESTED_FIELDS = re.compile(r"^((?:Failed to parse \w+ field: )+)")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_SPAN_ID_KEYS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
_LINK_ID_KEYS = ("traceId", "trace_id", "spanId", "span_id")
_OUT_SPAN_ID_KEYS = ("traceId", "spanId", "parentSpanId")
_OUT_LINK_ID_KEYS = ("traceId", "spanId")


def decode_request(body: bytes | bytearray) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON ``ExportTraceServiceRequest``; raises :class:`ValueError` naming what is wrong."""
    data = _load_object(body, "ExportTraceServiceRequest")
    for path, span in _spans(data):
        _convert_ids(span, path, _SPAN_ID_KEYS, _hex_to_base64)
        links = _first(span, "links")
        if isinstance(links, list):
            for index, link in enumerate(links):
                if isinstance(link, dict):
                    _convert_ids(link, f"{path}.links[{index}]", _LINK_ID_KEYS, _hex_to_base64)
    return _parse(data, ExportTraceServiceRequest())


def encode_request(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON for ``request``, UTF-8, on one line (no newline inside, so it suits JSON lines)."""
    data = json_format.MessageToDict(request, use_integers_for_enums=True)
    for path, span in _spans(data):
        _convert_ids(span, path, _OUT_SPAN_ID_KEYS, _base64_to_hex)
        for index, link in enumerate(span.get("links", ())):
            _convert_ids(link, f"{path}.links[{index}]", _OUT_LINK_ID_KEYS, _base64_to_hex)
    return _dump(data)


def decode_response(body: bytes | bytearray) -> ExportTraceServiceResponse:
    """Parse an OTLP/JSON ``ExportTraceServiceResponse``; raises :class:`ValueError` naming what is wrong."""
    return _parse(_load_object(body, "ExportTraceServiceResponse"), ExportTraceServiceResponse())


def encode_response(response: ExportTraceServiceResponse) -> bytes:
    """OTLP/JSON for an ``ExportTraceServiceResponse`` (``{}`` when it is empty)."""
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


def _spans(data: dict[str, Any]) -> Any:
    """(path, span dict) for every span object; anything not shaped as expected is left for ``ParseDict`` to refuse."""
    resources = _first(data, "resourceSpans", "resource_spans")
    if not isinstance(resources, list):
        return
    for r, resource in enumerate(resources):
        scopes = _first(resource, "scopeSpans", "scope_spans") if isinstance(resource, dict) else None
        if not isinstance(scopes, list):
            continue
        for s, scope in enumerate(scopes):
            spans = _first(scope, "spans") if isinstance(scope, dict) else None
            if not isinstance(spans, list):
                continue
            for i, span in enumerate(spans):
                if isinstance(span, dict):
                    yield f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]", span


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
