"""The ``review`` exporter's settings (docs/collector-config.md, "review")."""

from __future__ import annotations

from typing import Literal

import pydantic

from spanguard.collector.confignet import HttpUrl, TlsClientConfig
from spanguard.exporters.exporterhelper.retry import RetryConfig
from spanguard.exporters.exporterhelper.sending import Headers, SendingQueueConfig, SettingsModel, Timeout

__all__ = ["REVIEW_ITEMS_PATH", "ReviewExporterConfig"]

REVIEW_ITEMS_PATH = "/v1/review-items"
"""Where the review service takes items, under its base URL."""


class ReviewExporterConfig(SettingsModel):
    """``exporters.review``: review items to the review service (``mode: review``) or to any URL (``webhook``)."""

    endpoint: HttpUrl = pydantic.Field(min_length=1)
    """``review`` mode: the review service's base URL (``http://`` or ``https://``); items go to
    ``{endpoint}/v1/review-items``. ``webhook`` mode: the URL to POST to, exactly as given."""
    token: str | None = pydantic.Field(None, repr=False)
    """Sent as ``Authorization: Bearer <token>``; required in ``review`` mode (a token with the ``ingest`` role),
    optional in ``webhook`` mode. Use ``${env:VAR}``."""
    mode: Literal["review", "webhook"] = "review"
    """``review``: post to the review service; ``webhook``: post the same body to ``endpoint``."""
    headers: Headers = pydantic.Field(default={}, repr=False)
    """Extra request headers (both modes); an ``Authorization`` header together with ``token`` is refused."""
    tls: TlsClientConfig = TlsClientConfig()
    """TLS for ``https://`` URLs."""
    timeout: Timeout = 10.0
    """Timeout of one request."""
    max_items_per_request: int = pydantic.Field(100, ge=1, le=10_000)
    """Items per POST, 1 to 10000 (the review service takes 100 by default)."""
    sending_queue: SendingQueueConfig = SendingQueueConfig()
    """The sending queue in front of the review service."""
    retry_on_failure: RetryConfig = RetryConfig()
    """Retries with exponential backoff; ``Retry-After`` is honoured."""

    @pydantic.field_validator("token")
    @classmethod
    def _empty_token(cls, value: str | None) -> str | None:
        return value or None  # ${env:TOKEN:-} set to nothing: no token

    @pydantic.model_validator(mode="after")
    def _token(self) -> ReviewExporterConfig:
        # The token's value is never put in a message.
        if self.mode == "review" and self.token is None:
            raise ValueError(
                "token is required in review mode (the review service needs a token with the ingest role, "
                "e.g. token: ${env:SPANGUARD_REVIEW_TOKEN}); mode: webhook posts without one"
            )
        if self.token is not None and any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in self.token):
            raise ValueError("token must not contain spaces, line breaks or control characters")
        if self.token is not None and any(key.lower() == "authorization" for key in self.headers):
            raise ValueError("give either token or an Authorization header in headers, not both")
        return self

    @property
    def url(self) -> str:
        """Where items are POSTed."""
        if self.mode == "webhook":
            return self.endpoint
        base = self.endpoint.rstrip("/")
        return base if base.endswith(REVIEW_ITEMS_PATH) else base + REVIEW_ITEMS_PATH
