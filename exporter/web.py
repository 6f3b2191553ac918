"""The exporter's HTTP surface: /metrics, /, /-/healthy, /-/ready.

No request ever calls SPE: /metrics serves the cached exposition, the landing page reads
the health table. Unknown paths get 404, methods other than GET and HEAD get 405.
Limits that hold before authentication (head bytes, wall-clock deadlines, connection cap,
accept back-off) are in ``exporter.weblimits``.
"""

from __future__ import annotations

import email.utils
import html
import http.client
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from exporter import __version__
from exporter.exposition import ExpositionCache, wants_gzip, wants_openmetrics
from exporter.health import HealthTable
from exporter.webconfig import AuthBusy, BasicAuth
from exporter.weblimits import (
    HEAD_SECONDS,
    RESPONSE_SECONDS,
    AcceptBackoff,
    ConnectionSlots,
    Deadlines,
    HeadReader,
    HeadTooLarge,
)
from exporter.webrequest import BadRequest, parse_request_line, read_fields

if TYPE_CHECKING:
    from exporter.maintenance import OperationsView

log = logging.getLogger(__name__)


class ExporterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Prometheus and a few browsers at most: but never refuse a burst of scrapes.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        *,
        exposition: ExpositionCache,
        health: HealthTable,
        is_ready: Callable[[], bool],
        targets: Callable[[], dict[str, str]],
        ssl_context: ssl.SSLContext | None = None,
        auth: BasicAuth | None = None,
        headers: dict[str, str] | None = None,
        max_request_bytes: int = 8192,
        reload: Callable[[], tuple[int, str]] | None = None,  # -> (HTTP status, message)
        operations: Callable[[], dict[str, OperationsView]] | None = None,
        open_healthy: bool = True,
    ) -> None:
        self.exposition = exposition
        self.health = health
        self.is_ready = is_ready
        self.targets = targets  # target name -> URL (shown on the landing page)
        self.ssl_context = ssl_context
        self.auth = auth
        self.extra_headers = headers or {}
        self.max_request_bytes = max_request_bytes
        self.reload = reload  # POST /-/reload, only when lifecycle endpoints are enabled
        self.operations = operations  # target -> long-running operations (landing page)
        # /-/healthy answers without basic auth (container health checks, web.healthy_open)
        self.open_healthy = open_healthy
        self.deadlines = Deadlines()
        self.slots = ConnectionSlots()
        self.accept_backoff = AcceptBackoff()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            sock, addr = super().get_request()
        except OSError as exc:
            # socketserver ignores a failed accept() and selects again at once: on EMFILE
            # that is a busy loop. Back off (the caller still ignores the error).
            self.accept_backoff.handle(exc)
            raise
        if self.ssl_context is not None:
            # The handshake happens in the request's own thread (see _Handler.handle), so a
            # slow or silent client cannot hold up accepting other connections.
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.take(make_room=self.deadlines.evict_oldest_waiting):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.give_back()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.deadlines.disarm(request)
            self.slots.give_back()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One log line instead of socketserver's traceback on stderr."""
        exc = sys.exc_info()[1]
        peer = client_address[0] if client_address else ""
        if isinstance(exc, OSError):  # resets, broken pipes, expired deadlines, TLS errors
            log.debug("connection ended", extra={"peer": peer, "error": repr(exc)})
        else:
            log.error("HTTP handler failed", extra={"peer": peer}, exc_info=exc)


class _Handler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    server_version = f"mailstore-spe-exporter/{__version__}"
    protocol_version = "HTTP/1.1"

    # Idle or slow connections are closed after this many seconds (no slowloris).
    timeout = 30

    def setup(self) -> None:
        self.server.deadlines.arm(self.request, HEAD_SECONDS, head=True)  # and TLS handshake
        super().setup()
        no_delay(self.request)
        self.rfile = HeadReader(self.rfile, self.server.max_request_bytes)  # type: ignore[assignment]

    def handle(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            # setup() has applied the timeout; a failed handshake just drops the connection.
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                peer = self.client_address[0] if self.client_address else ""
                log.debug("TLS handshake failed", extra={"peer": peer, "error": str(exc)})
                return
        super().handle()

    def handle_one_request(self) -> None:
        """The standard library's loop step, with the head budget and the deadlines."""
        self.rfile.start_request()  # type: ignore[attr-defined]
        self.server.deadlines.arm(self.request, HEAD_SECONDS, head=True)
        try:
            try:
                self.raw_requestline = self.rfile.readline(65537)
            except HeadTooLarge:
                self.requestline = self.request_version = self.command = ""
                self.send_error(431, "Request Header Fields Too Large")
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():  # answers bad requests itself (send_error)
                return
            self.server.deadlines.arm(self.request, RESPONSE_SECONDS, head=False)
            method = getattr(self, "do_" + self.command, None)
            if method is None:  # TRACE, CONNECT, FOO: the README promises 405
                self._method_not_allowed()
                return
            method()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def parse_request(self) -> bool:
        """The standard library's step (request line, header fields, ``Connection``,
        ``Expect``) with the strict and fast parser of ``exporter.webrequest`` instead of
        ``email.parser``. False when the request was answered (or the line was empty)."""
        self.command = None  # type: ignore[assignment]  # (as the standard library's)
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        if not self.requestline.split():
            return False
        try:
            command, path, version, number = parse_request_line(self.requestline)
        except BadRequest as exc:
            self.send_error(exc.status, exc.message)
            return False
        if version is not None:
            self.request_version = version
            if number >= (1, 1) and self.protocol_version >= "HTTP/1.1":
                self.close_connection = False
        self.command = command
        # "//host/x" would read as a network path to urllib: one leading slash (gh-87389)
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        try:
            self.headers = read_fields(self.rfile.readline)  # type: ignore[assignment]
        except http.client.LineTooLong:  # the head's byte budget (HeadTooLarge)
            self.send_error(431)
            return False
        except BadRequest as exc:
            self.send_error(exc.status, exc.message)
            return False
        tokens = {t.strip().lower() for t in (self.headers.get("Connection") or "").split(",")}
        if "close" in tokens:
            self.close_connection = True
        elif "keep-alive" in tokens and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        expect = (self.headers.get("Expect") or "").lower()
        if expect == "100-continue" and number >= (1, 1) and self.protocol_version >= "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors found while parsing, as plain text with the configured headers."""
        self.close_connection = True
        text = message or self.responses.get(code, ("Error",))[0]
        if code == 431:  # the standard library says "Line too long" or "Too many headers"
            text = "Request Header Fields Too Large"
        body = b"" if code < 200 or code in (204, 304) else (text + "\n").encode("utf-8", "replace")
        self._send(code, body, "text/plain; charset=utf-8", extra={"Connection": "close"},
                   head=self.command == "HEAD")

    def do_GET(self) -> None:
        if self._admitted():
            self._dispatch(head=False)

    def do_HEAD(self) -> None:
        if self._admitted():
            self._dispatch(head=True)

    def do_POST(self) -> None:
        if not self._admitted():
            return
        if self.path.split("?", 1)[0] == "/-/reload" and self.server.reload is not None:
            status, message = self.server.reload()
            self._send(status, (message + "\n").encode(), "text/plain; charset=utf-8")
        else:
            self._method_not_allowed()

    def _method_not_allowed(self) -> None:
        allow = "GET, HEAD, POST" if self.server.reload is not None else "GET, HEAD"
        self._send(
            405, b"Method Not Allowed\n", "text/plain; charset=utf-8", extra={"Allow": allow}
        )

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed

    def _admitted(self) -> bool:
        """Body framing, size limits and basic auth, checked before anything else (the
        head's byte budget was enforced while it was read)."""
        if self.headers.get("Transfer-Encoding") is not None:
            # No endpoint takes a body: a chunked one could only smuggle a second request.
            self.send_error(400, "Transfer-Encoding is not accepted")
            return False
        lengths = {v.strip() for v in self.headers.get_all("Content-Length") or ()}
        if len(lengths) > 1:
            self.send_error(400, "conflicting Content-Length headers")
            return False
        length_text = lengths.pop() if lengths else "0"
        if not length_text.isdigit():  # also refuses "+5", "-1", " 5 5", "0x10"
            self.send_error(400, "invalid Content-Length")
            return False
        length = int(length_text)
        if length > self.server.max_request_bytes:
            self.send_error(413, "Content Too Large")
            return False
        if length:
            self.rfile.read(length)  # no endpoint takes a body: discard it
        auth = self.server.auth
        if auth is None or (self.server.open_healthy and self._path() == "/-/healthy"):
            return True
        try:
            ok = auth.check(self.headers.get("Authorization"))
        except AuthBusy:
            self.close_connection = True
            self._send(503, b"Too many password checks, try again\n", "text/plain; charset=utf-8",
                       extra={"Retry-After": "1", "Connection": "close"})
            return False
        if not ok:
            self._send(
                401,
                b"Unauthorized\n",
                "text/plain; charset=utf-8",
                extra={"WWW-Authenticate": 'Basic realm="mailstore-spe-exporter"'},
            )
            return False
        return True

    def _path(self) -> str:
        return self.path.split("?", 1)[0]

    def _dispatch(self, *, head: bool) -> None:
        path = self._path()
        if path == "/metrics":
            self._metrics(head)
        elif path == "/":
            # "replace": no string on the page may make the whole page fail (issue 13 B4)
            body = _landing_page(self.server).encode("utf-8", "replace")
            self._send(200, body, "text/html; charset=utf-8", head=head)
        elif path == "/-/healthy":
            self._send(200, b"Healthy\n", "text/plain; charset=utf-8", head=head)
        elif path == "/-/ready":
            if self.server.is_ready():
                self._send(200, b"Ready\n", "text/plain; charset=utf-8", head=head)
            else:
                self._send(503, b"Not ready\n", "text/plain; charset=utf-8", head=head)
        else:
            self._send(404, b"Not Found\n", "text/plain; charset=utf-8", head=head)

    def _metrics(self, head: bool) -> None:
        body = self.server.exposition.body(
            openmetrics=wants_openmetrics(self.headers.get("Accept")),
            gzipped=wants_gzip(self.headers.get("Accept-Encoding")),
        )
        extra = {"Vary": "Accept, Accept-Encoding"}
        if body.gzipped:
            extra["Content-Encoding"] = "gzip"
        self._send(200, body.parts, body.content_type, head=head, extra=extra)

    def _send(
        self,
        status: int,
        body: bytes | tuple[bytes, ...],  # a tuple is written part by part, never joined
        content_type: str,
        *,
        head: bool = False,
        extra: dict[str, str] | None = None,
    ) -> None:
        parts = (body,) if isinstance(body, bytes) else body
        length = sum(map(len, parts))
        fields = [("Content-Type", content_type), ("Content-Length", str(length))]
        fields.extend(self.server.extra_headers.items())
        if extra:
            fields.extend(extra.items())
        send_response(self.request, self._response_head(status, length, fields),
                      () if head else parts)

    def _response_head(self, status: int, length: int, fields: list[tuple[str, str]]) -> bytes:
        """What ``send_response`` + ``send_header`` + ``end_headers`` would buffer (status
        line, Server, Date, the fields, the empty line), built in one go: the head is not
        flushed on its own, it goes out with the body. Nothing for an HTTP/0.9 request."""
        if log.isEnabledFor(logging.DEBUG):  # the access log line is a debug line
            self.log_request(status, length)
        for name, value in fields:
            if name.lower() == "connection":  # as send_header does
                value = value.lower()
                if value == "close":
                    self.close_connection = True
                elif value == "keep-alive":
                    self.close_connection = False
        if self.request_version == "HTTP/0.9":
            return b""
        reason = self.responses[status][0] if status in self.responses else ""
        lines = [f"{self.protocol_version} {status} {reason}\r\n"
                 f"Server: {_server_header(self)}\r\nDate: {_http_date()}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in fields)
        lines.append("\r\n")
        return "".join(lines).encode("latin-1", "strict")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", format % args)


_server_headers: dict[type, str] = {}
_date: tuple[int, str] = (0, "")


def _server_header(handler: BaseHTTPRequestHandler) -> str:
    """``version_string()`` of the handler's class, computed once."""
    text = _server_headers.get(type(handler))
    if text is None:
        text = _server_headers[type(handler)] = handler.version_string()
    return text


def _http_date() -> str:
    """The Date header's value (RFC 9110 IMF-fixdate), formatted once per second."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, email.utils.formatdate(now, usegmt=True))
    return _date[1]


def no_delay(sock: socket.socket) -> None:
    """Disable Nagle's algorithm: a response's last, partial segment must not wait for the
    client's delayed ACK of the previous one (a 40 ms stall on a multi-part body)."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # the connection is already gone: the request will find out
            pass


_IOV_MAX = 1024  # Linux's limit of buffers per sendmsg (os.sysconf("SC_IOV_MAX"))
_JOIN_BELOW = 256 * 1024  # TLS: parts up to this size are joined into one write


def send_response(sock: socket.socket, head: bytes, parts: Sequence[bytes]) -> None:
    """Write a response head and its body parts in as few system calls as possible.

    Plain TCP: one ``sendmsg`` of all the buffers (scatter/gather, no copy of the body),
    repeated only for what a full send buffer did not take. TLS cannot gather: runs of
    small parts are joined, large parts are written as they are.
    """
    if isinstance(sock, ssl.SSLSocket) or not hasattr(sock, "sendmsg"):
        pending: list[bytes] = [head]
        size = len(head)
        for part in parts:
            if size + len(part) > _JOIN_BELOW and pending:
                sock.sendall(b"".join(pending))
                pending, size = [], 0
            pending.append(part)
            size += len(part)
        if pending:
            sock.sendall(b"".join(pending))
        return
    sent = sock.sendmsg([head, *parts]) if len(parts) < _IOV_MAX else 0
    if sent == len(head) + sum(map(len, parts)):
        return  # the common case: the send buffer took it all (no views, no loop)
    views = _skip([memoryview(b) for b in (head, *parts) if b], sent)
    while views:
        views = _skip(views, sock.sendmsg(views[:_IOV_MAX]))


def _skip(views: list[memoryview], sent: int) -> list[memoryview]:
    """``views`` without their first ``sent`` bytes."""
    first = 0
    while first < len(views) and sent >= views[first].nbytes:
        sent -= views[first].nbytes
        first += 1
    if sent:
        views[first] = views[first][sent:]
    return views[first:]


# Headings of the notes collectors give for the status page.
NOTE_TITLES = {"service": "SPE dashboard messages (GetServiceStatus)"}


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _operations_html(view: OperationsView) -> str:
    """Running long-running calls, last errors per function, the maintenance schedule."""
    esc = html.escape
    parts = []
    if view.running:
        running = ", ".join(f"{esc(fn)} ({n})" for fn, n in sorted(view.running.items()))
        parts.append(f"<p>Long-running SPE calls in progress: {running}</p>")
    if view.errors:
        parts.append("<table><tr><th>function</th><th>last long-running error</th></tr>")
        for fn, error in sorted(view.errors.items()):
            parts.append(f"<tr><td>{esc(fn)}</td><td>{esc(error)}</td></tr>")
        parts.append("</table>")
    if view.tasks:
        parts.append(
            "<table><tr><th>maintenance</th><th>schedule</th><th>next run</th>"
            "<th>last start</th><th>last result</th><th>skipped</th><th>error</th></tr>"
        )
        for t in view.tasks:
            result = "running" if t.running else (t.last_result or "not run yet")
            parts.append(
                f"<tr><td>{esc(t.name)}</td><td>{esc(t.schedule)}</td>"
                f"<td>{_fmt_time(t.next_run)}</td><td>{_fmt_time(t.last_start)}</td>"
                f"<td>{esc(result)}</td><td>{t.skipped}</td><td>{esc(t.last_error or '')}</td></tr>"
            )
        parts.append("</table>")
    return "".join(parts)


def _landing_page(server: ExporterHTTPServer) -> str:
    esc = html.escape
    rows = []
    targets = server.targets()
    operations = server.operations() if server.operations is not None else {}
    for target, collectors in server.health.snapshot().items():
        up = server.health.up(target)
        up_text = {None: "unknown", True: "up", False: "down"}[up]
        rows.append(
            f"<h2>{esc(target)} <small>({esc(targets.get(target, ''))}) SPE {up_text}</small></h2>"
        )
        rows.append(
            "<table><tr><th>collector</th><th>interval</th><th>status</th>"
            "<th>last run</th><th>last success</th><th>duration</th><th>error</th></tr>"
        )
        now = time.monotonic()
        for name, s in collectors.items():
            state = s.state(now)
            if s.enabled and s.access_off:
                state += f"; skipped: provider access off ({s.access_off} instances)"
            duration = "" if s.duration is None else f"{s.duration:.2f}s"
            rows.append(
                f"<tr><td>{esc(name)}</td><td>{s.interval:g}s</td><td>{state}</td>"
                f"<td>{_fmt_time(s.last_run)}</td><td>{_fmt_time(s.last_success)}</td>"
                f"<td>{duration}</td><td>{esc(s.error or '')}</td></tr>"
            )
        rows.append("</table>")
        for name, s in collectors.items():
            if s.notes:
                title = NOTE_TITLES.get(name, f"Notes of collector {name}")
                items = "".join(
                    f"<li>{esc(note)}</li>" if not note.startswith(" ")
                    else f"<li style='margin-left:2em'>{esc(note.strip())}</li>"
                    for note in s.notes
                )
                rows.append(f"<h3>{esc(title)}</h3><ul>{items}</ul>")
        if operations.get(target) is not None:
            rows.append(_operations_html(operations[target]))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<title>MailStore SPE exporter</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}</style>"
        "</head><body><h1>MailStore SPE exporter</h1>"
        f"<p>Version {esc(__version__)}. "
        "<a href='/metrics'>Metrics</a> · <a href='/-/healthy'>Health</a> · "
        "<a href='/-/ready'>Readiness</a></p>" + "".join(rows) + "</body></html>"
    )


class WebServer:
    """Runs the HTTP server in a background thread."""

    def __init__(self, server: ExporterHTTPServer) -> None:
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="web", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self.server.deadlines.start()
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server.deadlines.stop()
        self._thread.join(timeout=2)
