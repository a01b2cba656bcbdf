"""How the ``otlphttp`` exporter sends one request: a POST with ``httpx``, ``Retry-After`` honoured
(docs/collector-config.md)."""

from __future__ import annotations

import gzip
import json
import logging
from typing import Any

from spanguard.collector.signals import TRACES, Signal
from spanguard.exporters.exporterhelper.httpclient import HttpClient
from spanguard.exporters.exporterhelper.retry import classify_http_status
from spanguard.exporters.exporterhelper.sending import Payload, SendResult, encode_json, partial_success
from spanguard.exporters.otlphttp.config import OtlpHttpExporterConfig

__all__ = ["HttpSender"]

logger = logging.getLogger("spanguard.collector.exporter")


class HttpSender:
    """OTLP/HTTP with ``httpx``: protobuf or JSON, gzip, ``Retry-After`` honoured."""

    def __init__(self, config: OtlpHttpExporterConfig, signal: Signal = TRACES) -> None:
        self._config = config
        self._signal = signal
        url = config.url_for(signal.name)
        if url is None:
            raise ValueError(f"no URL for {signal.name}: give endpoint (base URL) or {signal.name}_endpoint")
        self.url = url
        self._http = HttpClient("otlphttp", self.url, config.tls, config.timeout, logger)
        headers = {key: value for key, value in config.headers.items()}
        headers["Content-Type"] = "application/json" if config.encoding == "json" else "application/x-protobuf"
        if config.compression == "gzip":
            headers["Content-Encoding"] = "gzip"
        self._headers = headers

    def start(self) -> None:
        self._http.start()

    def _body(self, payload: Payload) -> bytes:
        body = encode_json(payload.request) if self._config.encoding == "json" else payload.data
        if self._config.compression == "gzip":
            body = gzip.compress(body, compresslevel=6)
        return body

    def send(self, payload: Payload) -> SendResult:
        self._http.ensure_open()
        response = self._http.post(self._body(payload), self._headers)
        if 200 <= response.status_code < 300:
            return self._partial(response)
        raise classify_http_status(response.status_code, response.headers, self._status_message(response))

    @staticmethod
    def _is_json(response: Any) -> bool:
        return "json" in response.headers.get("content-type", "").lower()

    def _partial(self, response: Any) -> SendResult:
        body = response.content
        if not body:
            return SendResult()
        try:
            if self._is_json(response):
                from spanguard.collector.receivers.otlp.otlp_json import decode_response

                return partial_success(decode_response(body, self._signal), self._signal)
            return partial_success(self._signal.response.FromString(body), self._signal)
        except Exception:  # an unreadable success body is still a success
            return SendResult()

    def _status_message(self, response: Any) -> str | None:
        body = response.content
        if not body:
            return None
        try:
            from google.rpc import status_pb2

            if self._is_json(response):
                message = json.loads(body).get("message")
                return str(message) if message else None
            if "protobuf" in response.headers.get("content-type", "").lower():
                return status_pb2.Status.FromString(body).message or None
        except Exception:
            return None
        return None

    def close(self) -> None:
        self._http.close()
