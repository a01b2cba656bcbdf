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

    endpoint: HttpUrl = pydantic.Field(
        min_length=1,
        description="review mode: the review service's base URL (items go to {endpoint}/v1/review-items); "
        "webhook mode: the URL to POST to, as given",
    )
    token: str | None = pydantic.Field(
        None, repr=False, description="sent as Authorization: Bearer <token>; required in review mode"
    )
    mode: Literal["review", "webhook"] = "review"
    headers: Headers = pydantic.Field(default={}, repr=False, description="extra request headers")
    tls: TlsClientConfig = TlsClientConfig()
    timeout: Timeout = 10.0
    max_items_per_request: int = pydantic.Field(100, ge=1, le=10_000, description="items per POST")
    sending_queue: SendingQueueConfig = SendingQueueConfig()
    retry_on_failure: RetryConfig = RetryConfig()

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
