"""The ``file`` exporter: OTLP JSON lines, one request per line, with optional rotation. Settings:
docs/collector-config.md."""
