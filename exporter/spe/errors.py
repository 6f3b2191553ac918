"""Typed errors of the SPE client.

Every error carries a ``reason`` that is also the value of the ``reason`` label of
``mailstore_spe_api_request_failures_total``, and a message a person can act on.
Messages never contain credentials.
"""

from __future__ import annotations

import re

# The closed set of failure reasons of the metric contract.
REASONS = (
    "timeout",
    "connection",
    "tls",
    "http_401",
    "http_403",
    "http_404",
    "http_4xx",
    "http_5xx",
    "invalid_response",
    "api_error",
    "async_timeout",
)


class SPEError(Exception):
    """Base class of everything the SPE client raises."""

    reason = "connection"

    def __init__(self, message: str, *, function: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.function = function

    def __str__(self) -> str:
        if self.function:
            return f"{self.function}: {self.message}"
        return self.message


class SPEConnectionError(SPEError):
    """Connection refused, DNS failure, connection reset or dropped."""

    reason = "connection"


class SPETimeoutError(SPEError):
    """Connect or read timeout of a single HTTP request."""

    reason = "timeout"


class SPETLSError(SPEError):
    """TLS handshake, certificate verification or thumbprint pin failure."""

    reason = "tls"


class SPEHTTPError(SPEError):
    """An HTTP status other than 200."""

    def __init__(self, message: str, *, status: int, function: str | None = None) -> None:
        super().__init__(message, function=function)
        self.status = status

    @property
    def reason(self) -> str:  # type: ignore[override]
        if self.status in (401, 403, 404):
            return f"http_{self.status}"
        if 500 <= self.status <= 599:
            return "http_5xx"
        return "http_4xx"


class SPEAuthError(SPEHTTPError):
    """HTTP 401: wrong user name or password (or API password with MFA)."""


class SPEInvalidResponseError(SPEError):
    """The body is not valid JSON or not the expected envelope/result shape."""

    reason = "invalid_response"


class SPEAPIError(SPEError):
    """The envelope said ``statusCode: failed`` (HTTP 200 with an error object)."""

    reason = "api_error"

    def __init__(
        self,
        message: str,
        *,
        details: str | None = None,
        function: str | None = None,
        status_code: str = "failed",
    ) -> None:
        super().__init__(message, function=function)
        self.details = details
        self.status_code = status_code


class SPEAccessRefusedError(SPEAPIError):
    """SPE refused an instance function because *service provider access* is off for that
    instance: a state the tenant chose, not a failure (not counted in the failure counter).

    SPE answers it like any failed call (HTTP 200, ``statusCode: failed``); it is recognised
    by its message (``is_access_refusal``). The real text has not been captured
    (spe-api-notes §3), so the match is deliberately loose.
    """


_ACCESS_REFUSAL = re.compile(r"service\s*provider\s*access|archive\s*admin", re.IGNORECASE)


def is_access_refusal(message: str | None) -> bool:
    return bool(message) and _ACCESS_REFUSAL.search(message) is not None


class SPEAsyncTimeoutError(SPEError):
    """A long-running call did not finish before its deadline (cancel-async was sent)."""

    reason = "async_timeout"

    def __init__(self, message: str, *, token: str | None = None, function: str | None = None):
        super().__init__(message, function=function)
        self.token = token


class SPEFunctionNotAllowedError(SPEError):
    """The exporter refused to call a function outside its allow-list (nothing was sent)."""

    reason = "invalid_response"


class SPEPollingStoppedError(SPEAsyncTimeoutError):
    """Polling of a long-running call was stopped because the client is shutting down.

    A subclass of ``SPEAsyncTimeoutError`` (same ``reason``) so callers that treat "did not
    finish in time" uniformly need no extra branch. ``cancel-async`` is only sent when the
    client was created with ``cancel_on_shutdown=True``.
    """
