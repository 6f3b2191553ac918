"""The exporter's HTTP surface: /metrics, /, /-/healthy, /-/ready.

No request ever calls SPE: /metrics serves the cached exposition, the landing page reads
the health table. Unknown paths get 404, methods other than GET and HEAD get 405.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from exporter import __version__
from exporter.exposition import ExpositionCache, wants_gzip, wants_openmetrics
from exporter.health import HealthTable

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
    ) -> None:
        self.exposition = exposition
        self.health = health
        self.is_ready = is_ready
        self.targets = targets  # target name -> URL (shown on the landing page)
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    server_version = f"mailstore-spe-exporter/{__version__}"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def _method_not_allowed(self) -> None:
        self._send(
            405, b"Method Not Allowed\n", "text/plain; charset=utf-8", extra={"Allow": "GET, HEAD"}
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed

    def _dispatch(self, *, head: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._metrics(head)
        elif path == "/":
            body = _landing_page(self.server).encode()
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
        self._send(200, body.content, body.content_type, head=head, extra=extra)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        *,
        head: bool = False,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", format % args)


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _landing_page(server: ExporterHTTPServer) -> str:
    esc = html.escape
    rows = []
    targets = server.targets()
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
        for name, s in collectors.items():
            if not s.enabled:
                state = "disabled"
            elif s.success is None:
                state = "pending"
            else:
                state = "ok" if s.success else "failed"
            duration = "" if s.duration is None else f"{s.duration:.2f}s"
            rows.append(
                f"<tr><td>{esc(name)}</td><td>{s.interval:g}s</td><td>{state}</td>"
                f"<td>{_fmt_time(s.last_run)}</td><td>{_fmt_time(s.last_success)}</td>"
                f"<td>{duration}</td><td>{esc(s.error or '')}</td></tr>"
            )
        rows.append("</table>")
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
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=2)
