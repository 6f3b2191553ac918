"""HTTPS front end: routing, Basic auth, the envelope + BOM, HTTP quirks and fault injection.

One thread per connection (TLS handshake included, so a slow client never blocks accept()),
HTTP/1.1 keep-alive, and every open connection tracked so ``close()`` ends them promptly.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import control, functions
from .errors import ApiError
from .functions import Arg
from .state import SimState
from .timezones import http_date

log = logging.getLogger(__name__)

BOM = b"\xef\xbb\xbf"
CACHE_CONTROL = "no-cache,private,no-store,must-revalidate,max-stale=0,post-check=0,pre-check=0"
SERVER_HEADER = "Microsoft-HTTPAPI/2.0"
INVOKE_PREFIX = "/api/invoke/"
CONTROL_PATH = "/_sim/control"
HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 120.0  # HTTP.sys' default idle connection timeout

# Arguments of the low-level functions (spe-api-notes §1.5, from R9's bootstrap metadata).
GET_STATUS_ARGS = (
    Arg("token", "string"),
    Arg("lastKnownStatusVersion", "number"),
    Arg("millisecondsTimeout", "number"),
)
CANCEL_ARGS = (Arg("token", "string"),)


def envelope(result: Any = None, error: ApiError | None = None) -> dict[str, Any]:
    """A finished synchronous call; statusVersion 2 as in the vendor's example."""
    return {
        "error": error.to_json() if error else None,
        "token": None,
        "statusVersion": 2,
        "statusCode": "failed" if error else "succeeded",
        "percentProgress": None,
        "statusText": None,
        "result": result,
        "logOutput": None,
    }


def spe_json(value: Any) -> bytes:
    return BOM + json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _DropConnection(Exception):
    """Close the connection without sending anything."""


class SPEHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: SimHTTPServer

    def version_string(self) -> str:
        return SERVER_HEADER

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request logs would drown test output; errors are logged separately

    def do_POST(self) -> None:
        self._handle("POST")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # -- request handling

    def _handle(self, method: str) -> None:
        try:
            self._route(method)
        except _DropConnection:
            self.close_connection = True
        except (OSError, ssl.SSLError):
            self.close_connection = True
        except Exception:
            log.exception("simulator: internal error on %s %s", method, self.path)
            self._send(500, b"Internal simulator error", "text/plain; charset=utf-8")

    def _route(self, method: str) -> None:
        body = b""
        if method in ("POST", "PUT"):
            length = self.headers.get("Content-Length")
            if length is None:
                # HTTP.sys refuses a body-carrying request without Content-Length (R3, real).
                self.close_connection = True
                self._send(411, b"<h1>Length Required</h1>", "text/html; charset=us-ascii")
                return
            try:
                body = self.rfile.read(int(length))
            except ValueError:
                self.close_connection = True
                self._send(400, b"<h1>Bad Request</h1>", "text/html; charset=us-ascii")
                return
        user = self._authenticate()
        if user is None:
            self._send(401, b"", "text/html", [("WWW-Authenticate", 'Basic realm="MailStore"')])
            return
        path = urlsplit(self.path).path
        if path == CONTROL_PATH and method == "POST":
            self._control(body)
        elif path.startswith(INVOKE_PREFIX) and method == "POST":
            self._invoke(path[len(INVOKE_PREFIX) :], body, user)
        elif path == "/api/get-status" and method == "POST":
            self._low_level("get-status", body)
        elif path == "/api/cancel-async" and method == "POST":
            self._low_level("cancel-async", body)
        elif path == "/api/get-metadata" and method in ("GET", "POST"):
            if self._faults("get-metadata") is None:
                return
            self._send_spe(functions.metadata())
        elif path.startswith("/api/"):
            self._send(405, b"", "text/html", [("Allow", "POST")])
        else:
            self._send(404, b"<h1>Not Found</h1>", "text/html; charset=us-ascii")

    def _authenticate(self) -> str | None:
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        if not sep or not self.server.state.check_credentials(user, password):
            return None
        return user

    @staticmethod
    def _form(body: bytes) -> dict[str, list[str]]:
        # Form-encoded only. A JSON body parses into nonsense keys, so arguments are "missing",
        # which is how the real server treats it (R3).
        return parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)

    # -- faults

    def _faults(self, function: str) -> dict[str, dict[str, Any]] | None:
        """Apply the faults that act before the call; None = the response has been handled."""
        state, stop = self.server.state, self.server.stop_event
        faults = state.faults.take(function)
        latency = state.scenario.latency
        delay = latency.get(function, latency.get("*", 0.0))
        delay += faults.get("latency", {}).get("seconds", 0.0)
        if delay and stop.wait(delay):
            raise _DropConnection
        if "hang" in faults and stop.wait(faults["hang"]["seconds"]):
            raise _DropConnection  # shutting down: end the hanging request at once
        if "drop_connection" in faults:
            raise _DropConnection
        if "http_status" in faults:
            fault = faults["http_status"]
            self._send(fault["status"], fault["body"].encode("utf-8"), "text/html; charset=utf-8")
            return None
        if "invalid_json" in faults:
            self._send(200, BOM + faults["invalid_json"]["body"].encode("utf-8"))
            return None
        if "api_error" in faults:
            fault = faults["api_error"]
            self._send_spe(envelope(error=ApiError(fault["message"], fault["details"])))
            return None
        return faults

    # -- endpoints

    def _invoke(self, name: str, body: bytes, user: str) -> None:
        faults = self._faults(name)
        if faults is None:
            return
        state = self.server.state
        fn = functions.REGISTRY.get(name)
        if fn is None:
            # Behaviour for unknown names is unconfirmed (spe-api-notes §8.11); assumed.
            self._send_spe(envelope(error=ApiError(f"Unknown API function: {name}")), faults)
            return
        try:
            call = functions.prepare(fn, self._form(body), state, user)
        except ApiError as exc:
            self._send_spe(envelope(error=exc), faults)
            return
        long_running = faults.get("long_running")
        if long_running is None and fn.long_running:
            long_running = {
                "steps": state.scenario.maintenance_steps,
                "step_seconds": state.scenario.maintenance_step_seconds,
            }
        if long_running is not None:
            params = {k: v for k, v in long_running.items() if k != "times"}
            self._send_spe(
                state.tasks.create(name, lambda: functions.run(fn, call), **params), faults
            )
            return
        try:
            result = envelope(functions.run(fn, call))
        except ApiError as exc:
            result = envelope(error=exc)
        self._send_spe(result, faults)

    def _low_level(self, name: str, body: bytes) -> None:
        faults = self._faults(name)
        if faults is None:
            return
        tasks = self.server.state.tasks
        spec = functions.Function(
            name,
            GET_STATUS_ARGS if name == "get-status" else CANCEL_ARGS,
            functions.Scope.SYSTEM,
            lambda call: None,
        )
        try:
            args = functions.bind_args(spec, self._form(body))
        except ApiError as exc:
            self._send_spe(envelope(error=exc), faults)
            return
        if name == "get-status":
            answer = tasks.status(
                args["token"], args["lastKnownStatusVersion"], args["millisecondsTimeout"]
            )
        else:
            # What cancel-async answers is unconfirmed; assumed: an empty succeeded envelope.
            answer = envelope() if tasks.cancel(args["token"]) else None
        if answer is None:
            self._send(404, b"", "text/html")  # unknown or expired token (R9)
            return
        self._send_spe(answer, faults)

    def _control(self, body: bytes) -> None:
        try:
            payload = json.loads(body.decode("utf-8-sig") or "null")
            answer, status = control.apply(self.server.state, payload), 200
        except (ValueError, control.ControlError) as exc:
            answer, status = {"ok": False, "error": str(exc)}, 400
        self._send(status, json.dumps(answer).encode("utf-8"))

    # -- output

    def _send_spe(self, value: Any, faults: dict[str, dict[str, Any]] | None = None) -> None:
        body = spe_json(value)
        cut = (faults or {}).get("truncated")
        if cut is None:
            self._send(200, body)
            return
        keep = cut["keep_bytes"] if cut["keep_bytes"] < len(body) else len(body) // 2
        if cut["content_length"] == "honest":
            self._send(200, body[:keep])
        else:
            # Promise the whole body, send part of it, then hang up.
            self._send(200, body[:keep], length=len(body))
            raise _DropConnection

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: list[tuple[str, str]] | None = None,
        length: int | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Cache-Control", CACHE_CONTROL)
        self.send_header("Pragma", "no-cache")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("Content-Type", content_type)
        self.send_header("Expires", http_date(time.time() - 86400))
        for name, value in headers or ():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        # Headers and body in one write: one TLS record, no Nagle/delayed-ACK stall.
        self._headers_buffer.append(b"\r\n" + body)
        self.flush_headers()


class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 4096  # benchmarks open thousands of connections at once

    def __init__(
        self,
        address: tuple[str, int],
        ssl_context: ssl.SSLContext,
        state: SimState,
        stop_event: threading.Event,
    ) -> None:
        self.ssl_context = ssl_context
        self.state = state
        self.stop_event = stop_event
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._conn_threads: set[threading.Thread] = set()
        super().__init__(address, SPEHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), daemon=True
        )
        with self._lock:
            self._conn_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        tracked: socket.socket = request
        self._track(tracked)
        try:
            if self.stop_event.is_set():
                return
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request.settimeout(HANDSHAKE_TIMEOUT)
            # wrap_socket detaches `request`; from here on the TLS socket owns the connection.
            tls = self.ssl_context.wrap_socket(request, server_side=True)
            self._untrack(tracked)
            tracked = tls
            self._track(tracked)
            if self.stop_event.is_set():
                return
            self.finish_request(tls, client_address)
        except (OSError, ssl.SSLError, ValueError):
            pass  # client went away, bad handshake, or we are shutting down
        finally:
            self._untrack(tracked)
            with self._lock:
                self._conn_threads.discard(threading.current_thread())
            tracked.close()
            request.close()

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def close_connections(self, timeout: float) -> None:
        """Unblock and end every connection thread (idle keep-alives, hangs, long-polls)."""
        with self._lock:
            connections = list(self._connections)
            threads = list(self._conn_threads)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
