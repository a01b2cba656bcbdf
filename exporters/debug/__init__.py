"""The ``debug`` exporter: logs what passes, at three verbosities. Settings: docs/collector-config.md."""
