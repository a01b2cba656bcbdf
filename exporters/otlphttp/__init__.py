"""The ``otlphttp`` exporter: OTLP over HTTP (protobuf or JSON) with ``httpx``. Settings: docs/collector-config.md."""
