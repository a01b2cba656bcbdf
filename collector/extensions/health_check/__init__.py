"""The ``health_check`` extension: ``/healthz`` answers 200 while every pipeline runs. See docs/collector-config.md."""
