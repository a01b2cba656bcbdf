"""The ``review`` exporter: the traces tail sampling sent to review, posted as review items to the review service
(``mode: review``) or to any URL (``mode: webhook``).

``items`` turns spans into review items (``docs/review.md``), ``sender`` posts them, behind the exporterhelper's
queue and retries. Settings: docs/collector-config.md, "review".
"""
