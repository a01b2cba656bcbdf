"""The ``otlp`` exporter: OTLP over gRPC with the official ``TraceServiceStub``. Settings: docs/collector-config.md."""
