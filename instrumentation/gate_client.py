"""The HTTP edge of the approval gate: the review service's approvals API, blocking (httpx.Client) and async.

Each call returns the service's JSON answer or raises :class:`ServiceError` saying which way it failed (unreachable,
refused token, conflict, ...), so the gate can fail closed with a message that names the cause. The routes and
bodies: docs/gates.md ("The approvals API").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Final, Literal

import httpx

__all__ = ["ApprovalsClient", "AsyncApprovalsClient", "ServiceError"]

FailureKind = Literal["unreachable", "unauthorized", "forbidden", "not_found", "conflict", "invalid", "unavailable"]
_RETRIES: Final = 3  # for create, which is idempotent by its request key
_BACKOFF_S: Final = 0.5


class ServiceError(Exception):
    """The approvals API did not give an answer the gate can use; ``kind`` says why."""

    def __init__(self, kind: FailureKind, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.status = kind, status


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return detail if isinstance(detail, str) else f"HTTP {response.status_code}"


def _answer(response: httpx.Response, endpoint: str) -> dict[str, Any]:
    """The JSON object of a 2xx answer; :class:`ServiceError` naming the failure otherwise."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ServiceError("invalid", f"the review service at {endpoint} answered with something not JSON", status)
        return body
    kinds: dict[int, FailureKind] = {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}
    kind = kinds.get(status, "unavailable" if status >= 500 else "invalid")
    what = {
        "unauthorized": "refused the token (SPANGUARD_REVIEW_TOKEN)",
        "forbidden": "refused the token's role (an agent needs an ingest token)",
    }.get(kind, "answered")
    raise ServiceError(kind, f"the review service at {endpoint} {what}: {_detail(response)}", status)


def _unreachable(endpoint: str, error: Exception) -> ServiceError:
    return ServiceError("unreachable", f"the review service at {endpoint} is unreachable ({type(error).__name__})")


def _retryable(error: ServiceError) -> bool:
    return error.kind in ("unreachable", "unavailable")


class _Routes:
    """What both clients share: the endpoint, the token's header and the route of each call."""

    def __init__(self, endpoint: str, token: str) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ServiceError("invalid", f"the review endpoint must be an http(s) URL, not {endpoint!r}")
        self.endpoint = endpoint.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def url(self, *parts: str) -> str:
        return "/".join([self.endpoint, "v1", "approvals", *parts])


class ApprovalsClient:
    """A blocking client of the approvals API."""

    def __init__(self, endpoint: str, token: str, *, timeout_s: float = 10.0) -> None:
        """``timeout_s`` bounds every request but a long poll, which gets its wait on top."""
        self._routes = _Routes(endpoint, token)
        self._timeout = timeout_s
        self._http = httpx.Client(headers=self._routes.headers, timeout=timeout_s)

    def _send(self, method: str, url: str, *, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, url, timeout=timeout or self._timeout, **kwargs)
        except httpx.HTTPError as error:
            raise _unreachable(self._routes.endpoint, error) from None
        return _answer(response, self._routes.endpoint)

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create an approval request (retried a few times: the request key makes it idempotent)."""
        for attempt in range(_RETRIES):
            try:
                return self._send("POST", self._routes.url(), json=dict(body))
            except ServiceError as error:
                if not _retryable(error) or attempt == _RETRIES - 1:
                    raise
                time.sleep(_BACKOFF_S * 2**attempt)
        raise AssertionError("unreachable")

    def get(self, approval_id: str, *, wait_s: float = 0.0) -> dict[str, Any]:
        """The request's state, waiting up to ``wait_s`` seconds for it to stop being pending (long poll)."""
        params = {"wait": f"{max(0.0, wait_s):.3f}"} if wait_s > 0 else None
        return self._send("GET", self._routes.url(approval_id), params=params, timeout=self._timeout + wait_s)

    def consume(self, approval_id: str, digest: str) -> dict[str, Any]:
        """Use the approval once, for the call whose digest it was granted to."""
        return self._send("POST", self._routes.url(approval_id, "consume"), json={"digest": digest})

    def close(self) -> None:
        """Close the connection pool (idempotent)."""
        self._http.close()


class AsyncApprovalsClient:
    """An asyncio client of the approvals API (the same calls as :class:`ApprovalsClient`)."""

    def __init__(self, endpoint: str, token: str, *, timeout_s: float = 10.0) -> None:
        """``timeout_s`` bounds every request but a long poll, which gets its wait on top."""
        self._routes = _Routes(endpoint, token)
        self._timeout = timeout_s
        self._http = httpx.AsyncClient(headers=self._routes.headers, timeout=timeout_s)

    async def _send(self, method: str, url: str, *, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, url, timeout=timeout or self._timeout, **kwargs)
        except httpx.HTTPError as error:
            raise _unreachable(self._routes.endpoint, error) from None
        return _answer(response, self._routes.endpoint)

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create an approval request (retried a few times: the request key makes it idempotent)."""
        for attempt in range(_RETRIES):
            try:
                return await self._send("POST", self._routes.url(), json=dict(body))
            except ServiceError as error:
                if not _retryable(error) or attempt == _RETRIES - 1:
                    raise
                await asyncio.sleep(_BACKOFF_S * 2**attempt)
        raise AssertionError("unreachable")

    async def get(self, approval_id: str, *, wait_s: float = 0.0) -> dict[str, Any]:
        """The request's state, waiting up to ``wait_s`` seconds for it to stop being pending (long poll)."""
        params = {"wait": f"{max(0.0, wait_s):.3f}"} if wait_s > 0 else None
        return await self._send("GET", self._routes.url(approval_id), params=params, timeout=self._timeout + wait_s)

    async def consume(self, approval_id: str, digest: str) -> dict[str, Any]:
        """Use the approval once, for the call whose digest it was granted to."""
        return await self._send("POST", self._routes.url(approval_id, "consume"), json={"digest": digest})

    async def aclose(self) -> None:
        """Close the connection pool (idempotent)."""
        await self._http.aclose()
