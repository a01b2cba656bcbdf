"""How the ``otlp`` exporter sends one request: OTLP/gRPC over one shared channel (docs/collector-config.md)."""

from __future__ import annotations

import logging
from typing import Any

from spanguard._logging import safe_url
from spanguard.collector.confignet import grpc_channel_credentials, grpc_target
from spanguard.collector.signals import TRACES, Signal
from spanguard.exporters.exporterhelper.retry import SendError, classify_grpc_error
from spanguard.exporters.exporterhelper.sending import Payload, SendResult, partial_success
from spanguard.exporters.otlp.config import OtlpExporterConfig

__all__ = ["GrpcSender"]

logger = logging.getLogger("spanguard.collector.exporter")


class GrpcSender:
    """OTLP/gRPC ``Export`` of one signal over one channel."""

    def __init__(self, config: OtlpExporterConfig, signal: Signal = TRACES) -> None:
        self._config = config
        self._signal = signal
        self.target, self.secure = grpc_target(config.endpoint, insecure=config.tls.insecure)
        self._metadata = tuple((key.lower(), value) for key, value in config.headers.items())
        self._channel: Any = None
        self._stub: Any = None

    def start(self) -> None:
        import grpc

        options = [
            ("grpc.max_send_message_length", -1),
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            # reconnect soon after a backend comes back, so our backoff (not the channel's) paces the retries
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 5000),
        ]
        if self.secure:
            tls = self._config.tls
            if tls.insecure_skip_verify:
                logger.warning("otlp: tls.insecure_skip_verify is not supported for gRPC; the server is verified")
            self._channel = grpc.secure_channel(self.target, grpc_channel_credentials(tls), options=options)
        else:
            self._channel = grpc.insecure_channel(self.target, options=options)
        logger.info("otlp: exporting to %s (%s)", safe_url(self.target), "TLS" if self.secure else "plaintext")
        self._stub = self._channel.unary_unary(
            self._signal.export_method,
            request_serializer=lambda request: request.SerializeToString(),
            response_deserializer=self._signal.response.FromString,
        )
        self._compression = (
            grpc.Compression.Gzip if self._config.compression == "gzip" else grpc.Compression.NoCompression
        )
        self._rpc_error = grpc.RpcError

    def send(self, payload: Payload) -> SendResult:
        stub = self._stub
        if stub is None:
            raise SendError("gRPC channel is closed", retryable=True)
        try:
            response = stub(
                payload.request,
                timeout=self._config.timeout,
                metadata=self._metadata or None,
                compression=self._compression,
            )
        except self._rpc_error as error:
            raise classify_grpc_error(error) from None
        return partial_success(response, self._signal)

    def close(self) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            channel.close()  # cancels RPCs in flight
