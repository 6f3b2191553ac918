"""``SPEClient``: calls SPE Management API functions over HTTPS.

One ``requests.Session`` per client, shared by the threads that use the client (the
connection pool is sized by ``pool_size``). Every failure is raised as a subclass of
``exporter.spe.errors.SPEError`` with a message an operator can act on; credentials never
appear in messages, logs or ``repr()``.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.auth import _basic_auth_str

from exporter import __version__
from exporter.spe import failures, longrunning
from exporter.spe.envelope import Envelope, body_excerpt, decode_envelope, decode_json
from exporter.spe.errors import (
    SPEAPIError,
    SPEError,
    SPEFunctionNotAllowedError,
    SPEInvalidResponseError,
)
from exporter.spe.formdata import encode_form
from exporter.spe.observer import ClientObserver, GuardedObserver
from exporter.spe.tls import SPEHTTPAdapter, TLSOptions
from exporter.spe.transport import call_deadline

log = logging.getLogger("exporter.spe")

GET_STATUS = "get-status"
CANCEL_ASYNC = "cancel-async"
GET_METADATA = "get-metadata"
# Low-level functions live under /api/, regular ones under /api/invoke/.
_LOW_LEVEL = (GET_STATUS, CANCEL_ASYNC, GET_METADATA)
_FUNCTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_USER_AGENT = f"mailstore-spe-exporter/{__version__} python-requests/{requests.__version__}"
_FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
# Shorter than any plausible password and long enough not to mangle ordinary words.
_MIN_SCRUB_LENGTH = 4
# Largest response body accepted (bytes). Real SPE answers stay far below (GetWorkerResults
# over a day for a big instance: a few MB); anything larger is a broken server or proxy,
# and reading it whole could exhaust the exporter's memory. Bodies are read in chunks and
# abandoned as soon as they exceed the limit.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_READ_CHUNK_BYTES = 256 * 1024


class SPEClient:
    """Client of one SPE Management API endpoint. Thread-safe; see docs/design.md."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        ca_file: str | None = None,
        insecure_skip_verify: bool = False,
        thumbprint: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        async_deadline: float = 600.0,
        status_poll_ms: int = 5000,
        pool_size: int = 16,
        observer: ClientObserver | None = None,
        allowed_functions: Collection[str] | None = None,
        cancel_on_shutdown: bool = False,
        max_response_bytes: int | None = None,
    ) -> None:
        self.base_url = _validate_base_url(base_url)
        parts = urlsplit(self.base_url)
        self._host_port = (
            f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        )
        self.username = username
        self._password = password
        self._secret_forms = secret_forms(username, password)
        self.tls = TLSOptions(ca_file, insecure_skip_verify, thumbprint)
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("async_deadline", async_deadline),
            ("status_poll_ms", status_poll_ms),
            ("pool_size", pool_size),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.async_deadline = float(async_deadline)
        self.status_poll_ms = int(status_poll_ms)
        # None: the module default, read when the client is made (tests may lower it).
        self.max_response_bytes = int(max_response_bytes or MAX_RESPONSE_BYTES)
        # Every event of this client's calls, typed, scrubbed, never raising (see observer).
        self.report: ClientObserver = GuardedObserver(observer, self._scrub_text)
        # An empty allow-list allows nothing; only None switches the check off.
        self.allowed_functions = (
            frozenset(allowed_functions) if allowed_functions is not None else None
        )
        self.cancel_on_shutdown = cancel_on_shutdown
        self._stop_event = threading.Event()
        self._tokens_lock = threading.Lock()
        self._own_tokens: set[str] = set()

        # The session only owns the adapters (connection pools). Requests are sent
        # straight to the adapter (``_send``): Session.request re-merges settings, hooks,
        # cookies and environment on every call, about a third of the CPU per call, and
        # none of it applies to one fixed host with fixed headers. It also means no
        # redirects are followed, so credentials never go to another URL.
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.mount("https://", self.tls.make_adapter(pool_size))
        self._session.mount("http://", SPEHTTPAdapter(1, pool_size))
        self._adapter = self._session.get_adapter(self.base_url)
        # Proxy settings come from the environment, read once here (requests would re-read
        # them and netrc on every call).
        self._proxies = requests.utils.get_environ_proxies(self.base_url)
        self._headers = {
            "User-Agent": _USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "Connection": "keep-alive",
            "Authorization": _basic_auth_str(username, password),
        }
        self.tls.warn_if_insecure(self.base_url)

    def __repr__(self) -> str:
        return f"SPEClient(base_url={self.base_url!r}, username={self.username!r})"

    # ----------------------------------------------------------------- public calls

    def call(
        self,
        function: str,
        /,
        *,
        deadline: float | None = None,
        on_progress: longrunning.ProgressCallback | None = None,
        poll_ms: int | None = None,
        cancel_on_shutdown: bool | None = None,
        **args: Any,
    ) -> Any:
        """Invoke ``function`` and return the ``result`` member of its final envelope."""
        return self.invoke(
            function,
            deadline=deadline,
            on_progress=on_progress,
            poll_ms=poll_ms,
            cancel_on_shutdown=cancel_on_shutdown,
            **args,
        ).result

    def invoke(
        self,
        function: str,
        /,
        *,
        deadline: float | None = None,
        on_progress: longrunning.ProgressCallback | None = None,
        poll_ms: int | None = None,
        cancel_on_shutdown: bool | None = None,
        **args: Any,
    ) -> Envelope:
        """Invoke ``function`` (following a long-running task) and return the final envelope.

        ``deadline`` (seconds) overrides ``async_deadline`` for this call; ``on_progress``
        receives every envelope of a long-running task whose status changed; ``poll_ms``
        and ``cancel_on_shutdown`` override the client's ``status_poll_ms`` and
        ``cancel_on_shutdown`` (a short long-poll lets shutdown interrupt polling sooner).
        Raises ``SPEAPIError`` when SPE reports the call failed.
        """
        with self._reported(function):
            self._check_allowed(function)
            env = self._invoke_once(function, args)
            if env.is_running:
                token = env.token
                self._remember_token(token)
                policy = longrunning.PollPolicy(
                    deadline=self.async_deadline if deadline is None else deadline,
                    poll_ms=self.status_poll_ms if poll_ms is None else poll_ms,
                    stop_event=self._stop_event,
                    cancel_on_shutdown=self.cancel_on_shutdown
                    if cancel_on_shutdown is None
                    else cancel_on_shutdown,
                )
                try:
                    env = longrunning.follow(self, function, env, policy, on_progress)
                finally:
                    self._forget_token(token)
            elif env.is_failed:
                raise failures.api_error(function, env)
            elif not env.is_succeeded:
                raise SPEAPIError(
                    env.error_message or f"call ended with status {env.status_code!r}",
                    details=env.error_details,
                    function=function,
                    status_code=env.status_code,
                )
            return env

    def get_status(
        self, token: str, last_known_status_version: int, milliseconds_timeout: int
    ) -> Envelope:
        """One ``get-status`` long-poll; returns the task's envelope whatever its status.

        With an allow-list, only tokens this client received are accepted.
        """
        with self._reported(GET_STATUS):
            self._check_own_token(GET_STATUS, token)
            return self.poll_status(token, last_known_status_version, milliseconds_timeout)

    def cancel_async(self, token: str) -> Envelope:
        """Ask SPE to cancel a long-running task (SPE decides if and when)."""
        with self._reported(CANCEL_ASYNC):
            self._check_own_token(CANCEL_ASYNC, token)
            return self._cancel(token)

    def get_metadata(self) -> list[Any]:
        """The function list (``get-metadata`` answers a bare array, not an envelope)."""
        with self._reported(GET_METADATA):
            self._check_allowed(GET_METADATA)
            body = self._post(GET_METADATA, None, self.read_timeout)
            data = decode_json(body)
            # Tolerate a server that wraps the array in the usual envelope.
            if isinstance(data, dict) and isinstance(data.get("result"), list):
                data = data["result"]
            if not isinstance(data, list):
                raise SPEInvalidResponseError(
                    f"expected a JSON array of functions, body starts with {body_excerpt(body)}",
                    function=GET_METADATA,
                )
            return data

    def stop_polling(self) -> None:
        """Make running and future long-running polls stop promptly (for shutdown)."""
        self._stop_event.set()

    @property
    def stopped(self) -> bool:
        """True once ``stop_polling`` or ``close`` was called."""
        return self._stop_event.is_set()

    def close(self) -> None:
        """Stop polling and release the connections."""
        self.stop_polling()
        self._session.close()

    def __enter__(self) -> SPEClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------- longrunning.StatusTransport

    def poll_status(self, token: str, last_known_version: int, milliseconds: int) -> Envelope:
        """``get-status`` without observer reporting (used by the poller and get_status)."""
        args = {
            "token": token,
            "lastKnownStatusVersion": last_known_version,
            "millisecondsTimeout": milliseconds,
        }
        # The server may legitimately hold the answer for `milliseconds`.
        body = self._post(GET_STATUS, args, self.read_timeout + milliseconds / 1000.0)
        return self._decode(GET_STATUS, body)

    def cancel_quietly(self, token: str) -> None:
        """Best-effort cancel-async: a failure is logged, never raised."""
        try:
            self._cancel(token)
        except SPEError as exc:
            log.warning("cancel-async failed (ignored): %s", self.scrub(exc))

    # ------------------------------------------------------------------- internals

    def _invoke_once(self, function: str, args: dict[str, Any]) -> Envelope:
        body = self._post(function, args, self.read_timeout)
        return self._decode(function, body)

    def _cancel(self, token: str) -> Envelope:
        try:
            body = self._post(CANCEL_ASYNC, {"token": token}, self.read_timeout)
            return self._decode(CANCEL_ASYNC, body)
        finally:
            self._forget_token(token)

    def _decode(self, function: str, body: bytes) -> Envelope:
        try:
            return decode_envelope(body)
        except SPEInvalidResponseError as exc:
            exc.function = function
            raise

    def _reported(self, function: str) -> _Reported:
        return _Reported(self, function)

    def _check_allowed(self, function: str) -> None:
        if self.allowed_functions is not None and function not in self.allowed_functions:
            raise SPEFunctionNotAllowedError(
                "refused to call a function outside this client's allow-list "
                f"({', '.join(sorted(self.allowed_functions))}); nothing was sent",
                function=function,
            )

    def _check_own_token(self, function: str, token: str) -> None:
        if self.allowed_functions is None:
            return
        with self._tokens_lock:
            known = token in self._own_tokens
        if not known:
            raise SPEFunctionNotAllowedError(
                "refused: the token was not issued to this client (with an allow-list, "
                "get-status and cancel-async only act on this client's own tasks); "
                "nothing was sent",
                function=function,
            )

    def _remember_token(self, token: str | None) -> None:
        if token:
            with self._tokens_lock:
                self._own_tokens.add(token)

    def _forget_token(self, token: str | None) -> None:
        if token:
            with self._tokens_lock:
                self._own_tokens.discard(token)

    def _url(self, function: str) -> str:
        if function in _LOW_LEVEL:
            return f"{self.base_url}/api/{function}"
        if not _FUNCTION_NAME.fullmatch(function):
            raise ValueError(f"not an SPE function name: {function!r}")
        return f"{self.base_url}/api/invoke/{function}"

    def _post(self, function: str, args: dict[str, Any] | None, read_timeout: float) -> bytes:
        """POST one request and return the body of a 200 answer; raise SPEError otherwise."""
        url = self._url(function)
        body = encode_form(args or {})
        started = time.monotonic()
        status: int | str = "-"
        seen: list[int] = []  # the HTTP status, once known (for the debug line)
        # Wall clock from connect to the last byte (the timeouts below are per socket read).
        total = self.connect_timeout + read_timeout
        try:
            with call_deadline(total) as deadline:
                try:
                    content = self._exchange(function, url, body, read_timeout, seen)
                except SPEError as exc:
                    if deadline.expired and exc.reason != "timeout":
                        raise failures.deadline_error(
                            function=function, where=self._host_port, seconds=total
                        ) from exc
                    raise
            status = seen[0]
            return content
        except SPEError as exc:
            status = f"{seen[0] if seen else '-'} ({exc.reason})"
            raise
        finally:
            log.debug(
                "SPE %s %s -> %s in %.3f s",
                self._host_port,
                function,
                status,
                time.monotonic() - started,
            )

    def _exchange(
        self, function: str, url: str, body: bytes | None, read_timeout: float, seen: list[int]
    ) -> bytes:
        try:
            response = self._adapter.send(
                self._prepare(url, body),
                stream=True,  # read by _read_body, bounded by max_response_bytes
                timeout=(self.connect_timeout, read_timeout),
                # Explicit, so REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE never override it.
                verify=self.tls.requests_verify,
                proxies=self._proxies,
            )
        except requests.RequestException as exc:
            raise self._transport_error(function, exc, read_timeout) from exc
        seen.append(response.status_code)
        with response:
            try:
                content = self._read_body(function, response)
            except requests.RequestException as exc:
                raise self._transport_error(function, exc, read_timeout) from exc
        if response.status_code != 200:
            raise failures.http_error(
                response,
                function=function,
                where=self._host_port,
                username=self.username,
                scrub=self._scrub_text,
            )
        return content

    def _prepare(self, url: str, body: bytes | None) -> requests.PreparedRequest:
        """The request as ``Session.prepare_request`` would build it, without its cost.

        SPE answers 411 without a Content-Length, so it is always sent (0 for no body).
        """
        request = requests.PreparedRequest()
        request.method = "POST"
        request.url = url
        headers = requests.structures.CaseInsensitiveDict(self._headers)
        if body is not None:
            headers.update(_FORM_HEADERS)
        headers["Content-Length"] = str(len(body) if body is not None else 0)
        request.headers = headers
        request.body = body
        return request

    def _read_body(self, function: str, response: requests.Response) -> bytes:
        """The whole body, or ``SPEInvalidResponseError`` once it exceeds the size limit.

        Sets ``response._content`` so ``_http_error`` can quote the body of an error page.
        """
        limit = self.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(function, f"Content-Length {int(declared)} bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_READ_CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise self._too_large(function, f"more than {limit} bytes received")
            chunks.append(chunk)
        content = b"".join(chunks)
        response._content = content  # what requests itself does when not streaming
        return content

    def _transport_error(
        self, function: str, exc: requests.RequestException, read_timeout: float
    ) -> SPEError:
        return failures.transport_error(
            exc,
            function=function,
            where=self._host_port,
            connect_timeout=self.connect_timeout,
            read_timeout=read_timeout,
            digest_name=self.tls.digest_name,
        )

    def _too_large(self, function: str, what: str) -> SPEInvalidResponseError:
        return SPEInvalidResponseError(
            f"response from {self._host_port} is larger than the limit of "
            f"{self.max_response_bytes} bytes ({what}); reading stopped. A real SPE answer "
            "is far smaller: check base_url, or a proxy in between",
            function=function,
        )

    def scrub(self, exc: SPEError) -> SPEError:
        # Last line of defence: no message we raise may contain the password, even if a
        # server or library echoed it back.
        scrubbed = self._scrub_text(exc.message)
        if scrubbed != exc.message:
            exc.message = scrubbed
            exc.args = (exc.message,)
        return exc

    def _scrub_text(self, text: str) -> str:
        for form in self._secret_forms:
            text = text.replace(form, "***")
        return text


def secret_forms(username: str, password: str) -> tuple[str, ...]:
    """Every form in which a server or proxy may echo the password back: as is, in the
    ``Authorization: Basic`` header (base64 of user:password, with and without padding),
    URL-encoded (a form body or query string) and as Python's repr escapes it (error
    excerpts). Longest first, so a longer form is never cut by a shorter one inside it."""
    if len(password) < _MIN_SCRUB_LENGTH:
        return ()
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    forms = {
        password,
        basic,
        basic.rstrip("="),
        urllib.parse.quote_plus(password),
        urllib.parse.quote(password, safe=""),
        repr(password)[1:-1],
    }
    return tuple(sorted(forms, key=len, reverse=True))

class _Reported:
    """Context manager: one ``request_finished`` per public call, with its end-to-end time.

    Non-SPE exceptions (programming errors such as a bad argument type) pass through
    unreported: they are bugs, not API failures.
    """

    def __init__(self, client: SPEClient, function: str) -> None:
        self.client = client
        self.function = function
        self.started = 0.0

    def __enter__(self) -> None:
        self.started = time.monotonic()

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None and not isinstance(exc, SPEError):
            return
        if isinstance(exc, SPEError):
            if exc.function is None:
                exc.function = self.function
            self.client.scrub(exc)
            log.debug("SPE call %s failed (%s): %s", self.function, exc.reason, exc)
        self.client.report.request_finished(self.function, time.monotonic() - self.started, exc)


def _validate_base_url(base_url: str) -> str:
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(
            f"base_url must look like https://host:8474, got {_without_userinfo(base_url)!r}"
        )
    if parts.username is not None or parts.password is not None:
        # Never echo the URL here: it contains credentials.
        raise ValueError("base_url must not contain credentials; use username and password instead")
    if parts.query or parts.fragment:
        raise ValueError(f"base_url must not have a query or fragment, got {base_url!r}")
    return base_url.strip().rstrip("/")


def _without_userinfo(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)
