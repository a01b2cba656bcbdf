"""The ``memory_limiter`` processor: refuses requests (retryably) above a memory limit. See docs/collector-config.md."""
