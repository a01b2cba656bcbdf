"""The exporterhelper: the sending queue, retries, send loop and telemetry every exporter type can reuse.

``exporter`` (:class:`~spanguard.exporters.exporterhelper.exporter.Exporter`), ``sending`` (the :class:`Sender`
protocol and :class:`Payload`), ``queue`` (memory and persistent queues), ``retry`` (backoff, failure classes).
Behaviour: docs/collector-config.md, "Exporters"; adding an exporter: docs/contributing.md.
"""
