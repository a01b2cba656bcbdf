"""How the ``review`` exporter sends one request: its review items, posted ``max_items_per_request`` at a time
(docs/collector-config.md, "review")."""

from __future__ import annotations

import logging

from spanguard.exporters.exporterhelper.httpclient import HttpClient
from spanguard.exporters.exporterhelper.retry import SendError, classify_http_status, parse_retry_after
from spanguard.exporters.exporterhelper.sending import Payload, SendResult
from spanguard.exporters.review.config import ReviewExporterConfig
from spanguard.exporters.review.items import convert_request, encode_items
from spanguard.semconv import SPANGUARD_REVIEW_TIER

__all__ = ["ReviewSender"]

logger = logging.getLogger("spanguard.collector.exporter.review")


_HINTS = {
    400: "the receiver refused the items",
    401: "the token was not accepted",
    403: "the token may not post items (it needs the ingest role)",
    404: "no such URL: check endpoint and mode",
    413: "the request is too large: lower max_items_per_request",
    422: "the receiver refused the items as invalid",
}


class ReviewSender:
    """Posts a batch's review items (:func:`~spanguard.exporters.review.items.review_items`) as
    ``{"items": [...]}``, ``max_items_per_request`` per POST.

    A batch without a trace for review sends nothing and succeeds. Failures are classified as for OTLP/HTTP
    (:func:`~spanguard.exporters.exporterhelper.retry.classify_http_status`): connection errors, timeouts, 429 and
    every 5xx are retryable (honouring ``Retry-After``); 400, 401, 403, 404, 413, 422 and every other 4xx are
    permanent: the exporter drops the batch and logs how many spans it lost, since posting the same items again would
    be refused again. A 500 is retried too, unlike OTLP: the review service's 500 is usually a passing database
    error.

    Sending stops at the first POST that fails, and the exporter retries the whole batch, so the items of POSTs that
    succeeded before are posted again. That is safe: the review service ingests idempotently by trace id (the same
    trace twice is one item; spans it has not seen yet are merged in), and a webhook receiver should do the same.

    Never logs span content, the token or the headers; messages name the HTTP status and a hint, not the response body
    (it may quote what was sent).
    """

    def __init__(self, config: ReviewExporterConfig) -> None:
        self._config = config
        self.url = config.url
        headers = {key: value for key, value in config.headers.items()}
        headers["Content-Type"] = "application/json"
        headers.setdefault("Accept", "application/json")
        if config.token is not None:
            headers["Authorization"] = f"Bearer {config.token}"
        self._headers = headers
        self._http = HttpClient("review", self.url, config.tls, config.timeout, logger)

    def start(self) -> None:
        self._http.start()

    def send(self, payload: Payload) -> SendResult:
        self._http.ensure_open()
        items, unknown = convert_request(payload.request)
        if unknown:
            logger.warning(
                "review: %d trace(s) carry only unknown values of %s; they are not sent",
                unknown,
                SPANGUARD_REVIEW_TIER,
            )
        size = self._config.max_items_per_request
        for start in range(0, len(items), size):
            self._post(encode_items(items[start : start + size]))
        return SendResult()

    def _post(self, body: bytes) -> None:
        response = self._http.post(body, self._headers)
        status = response.status_code
        if 200 <= status < 300:
            return
        error = classify_http_status(status, response.headers, _HINTS.get(status))
        if status >= 500 and not error.retryable:
            delay = parse_retry_after(response.headers.get("retry-after"))
            error = SendError(str(error), retryable=True, retry_after=delay)
        raise error

    def close(self) -> None:
        self._http.close()
