"""Turning what went wrong into an ``SPEError`` whose message an operator can act on.

The client (``exporter.spe.client``) sends and reads; everything that fails there comes
here to be named: which host, what happened, what to check. Messages never contain the
password (HTTP error texts are scrubbed by the caller's ``scrub``; the client scrubs
every message once more on the way out).
"""

from __future__ import annotations

import errno
import http.client
import re
import socket
from collections.abc import Callable, Iterator

import requests
import urllib3.exceptions

from exporter.spe.envelope import Envelope, body_excerpt
from exporter.spe.errors import (
    SPEAccessRefusedError,
    SPEAPIError,
    SPEAuthError,
    SPEConnectionError,
    SPEError,
    SPEHTTPError,
    SPETimeoutError,
    SPETLSError,
    is_access_refusal,
)
from exporter.spe.tls import pin_mismatch


def api_error(function: str, env: Envelope) -> SPEAPIError:
    if is_access_refusal(env.error_message) or is_access_refusal(env.error_details):
        return SPEAccessRefusedError(
            env.error_message or "service provider access is off",
            details=env.error_details,
            function=function,
        )
    return SPEAPIError(
        env.error_message or "SPE reported statusCode 'failed' without an error message",
        details=env.error_details,
        function=function,
    )


def deadline_error(*, function: str, where: str, seconds: float) -> SPETimeoutError:
    """The call's wall-clock deadline (connect + read timeout) passed before the last byte."""
    return SPETimeoutError(
        f"no complete response from {where} within {seconds:g} s (connect + read timeout, "
        "wall clock); SPE or a proxy sends too slowly",
        function=function,
    )


def transport_error(
    exc: requests.RequestException,
    *,
    function: str,
    where: str,
    connect_timeout: float,
    read_timeout: float,
    digest_name: str,
) -> SPEError:
    """A request that got no complete answer: timeout, connection, TLS."""
    causes = list(_causes(exc))
    if isinstance(exc, requests.exceptions.SSLError):
        return tls_error(exc, function=function, where=where, digest_name=digest_name)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return SPETimeoutError(
            f"connecting to {where} timed out (connect timeout {connect_timeout:g} s); "
            "SPE may be down, firewalled, or the URL may be wrong",
            function=function,
        )
    if isinstance(exc, requests.exceptions.ReadTimeout) or _has(
        causes, urllib3.exceptions.ReadTimeoutError, TimeoutError
    ):
        return SPETimeoutError(
            f"no response from {where} within the read timeout of {read_timeout:g} s; "
            "SPE may be overloaded (raise read_timeout if this function is slow)",
            function=function,
        )
    if _has(causes, urllib3.exceptions.NameResolutionError, socket.gaierror):
        return SPEConnectionError(
            f"cannot resolve host name of {where}; check base_url (DNS failure)",
            function=function,
        )
    if _has(causes, ConnectionRefusedError) or _errno_in(causes, errno.ECONNREFUSED):
        return SPEConnectionError(
            f"connection to {where} refused; SPE may be down or base_url "
            "(host or port, default 8474) may be wrong",
            function=function,
        )
    if _has(causes, urllib3.exceptions.NewConnectionError):
        return SPEConnectionError(
            f"cannot connect to {where} ({_last_words(causes)}); SPE may be down or "
            "base_url may be wrong",
            function=function,
        )
    if _has(
        causes,
        ConnectionResetError,
        http.client.RemoteDisconnected,
        http.client.IncompleteRead,
        urllib3.exceptions.ProtocolError,
    ):
        return SPEConnectionError(
            f"connection to {where} was closed or reset before a complete response "
            f"({_last_words(causes)}); SPE or a proxy in between may have dropped it",
            function=function,
        )
    return SPEConnectionError(
        f"request to {where} failed: {_last_words(causes)}", function=function
    )


def tls_error(
    exc: requests.RequestException, *, function: str, where: str, digest_name: str
) -> SPETLSError:
    """A failed TLS handshake: pin mismatch, untrusted certificate, or not TLS at all."""
    text = " | ".join(str(c) for c in _causes(exc))
    mismatch = pin_mismatch(text)
    if mismatch:
        expected, actual = mismatch
        return SPETLSError(
            f"certificate of {where} does not match the pinned {digest_name} "
            f"thumbprint: expected {expected}, server presented {actual}. If the "
            "certificate was renewed on purpose, update the thumbprint",
            function=function,
        )
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        reason = _verify_reason(text)
        return SPETLSError(
            f"TLS certificate verification failed for {where} ({reason}). SPE uses a "
            "self-signed certificate by default: set ca_file to its certificate (PEM) or "
            "pin its thumbprint (as shown by SPE)",
            function=function,
        )
    return SPETLSError(
        f"TLS handshake with {where} failed ({_last_words(list(_causes(exc)))}); "
        "check that base_url points at the SPE HTTPS port (default 8474)",
        function=function,
    )


def http_error(
    response: requests.Response,
    *,
    function: str,
    where: str,
    username: str,
    scrub: Callable[[str], str],
) -> SPEError:
    """An answer other than 200. ``scrub`` removes the password from quoted text."""
    status = response.status_code
    if status == 401:
        return SPEAuthError(
            f"authentication failed for user {username!r} (HTTP 401): check user "
            "name and API password; with MFA on, the API password is required",
            status=status,
            function=function,
        )
    if status == 403:
        return SPEHTTPError(
            f"access denied for user {username!r} (HTTP 403): the user must be an "
            "SPE system administrator",
            status=status,
            function=function,
        )
    if status == 404 and function == "get-status":
        return SPEHTTPError(
            "unknown or expired token (HTTP 404): the long-running task is no longer "
            "known to SPE (finished long ago, or SPE restarted)",
            status=status,
            function=function,
        )
    if status == 404:
        return SPEHTTPError(
            f"not found (HTTP 404) at {response.request.path_url}: the function may not "
            "exist on this SPE version (see get-metadata) or base_url has a wrong path",
            status=status,
            function=function,
        )
    if 300 <= status <= 399:
        # Not followed: the credentials would go to wherever the redirect points.
        location = scrub(response.headers.get("Location", "")[:200])
        return SPEHTTPError(
            f"redirect (HTTP {status}) to {location or 'nowhere'!r} not followed: base_url "
            "must point at the SPE Management API itself (https://<host>:8474), not at a "
            "proxy or web page that redirects",
            status=status,
            function=function,
        )
    return SPEHTTPError(
        f"HTTP {status} {response.reason or ''} from {where}; body starts with "
        f"{body_excerpt(response.content)}".replace("  ", " "),
        status=status,
        function=function,
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (``__cause__``/``__context__``/``reason``)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.append(current.__cause__ or current.__context__)
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
        for arg in current.args:
            if isinstance(arg, BaseException):
                todo.append(arg)


def _has(causes: list[BaseException], *types: type[BaseException]) -> bool:
    return any(isinstance(c, types) for c in causes)


def _errno_in(causes: list[BaseException], code: int) -> bool:
    return any(isinstance(c, OSError) and c.errno == code for c in causes)


def _last_words(causes: list[BaseException]) -> str:
    """A short description from the innermost cause (urllib3's outer texts are noisy)."""
    inner = causes[-1] if causes else None
    if inner is None:
        return "unknown error"
    text = str(inner) or type(inner).__name__
    return text if len(text) <= 200 else text[:200] + "..."


_VERIFY_REASON = re.compile(r"certificate verify failed: ([^(\]')\"]+)")


def _verify_reason(text: str) -> str:
    match = _VERIFY_REASON.search(text)
    return match.group(1).strip() if match else "certificate not trusted"
