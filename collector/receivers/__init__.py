"""The collector's receivers, one folder each (``otlp/``). How to add one: docs/collector-config.md."""
