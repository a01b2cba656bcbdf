"""The collector's extensions, one folder each (``health_check/``). See docs/collector-config.md."""
