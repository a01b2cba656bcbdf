"""spanguard.exporters: the collector's exporters, one folder each (``otlp``, ``otlphttp``, ``file``, ``debug``,
``review``), the exporterhelper they share (queue, retries, send loop), and the dataset export (``datasets``).
Settings and behaviour: docs/collector-config.md; adding an exporter: docs/contributing.md."""
