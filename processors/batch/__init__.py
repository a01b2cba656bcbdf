"""The ``batch`` processor: splits batches above ``send_batch_max_size`` spans. Behaviour: docs/collector-config.md."""
