"""Helpers of the fault tests: simulators, a rewriting HTTPS proxy, an in-process exporter
with two targets, metric lookups, log capture and thread accounting."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter
from exporter.collectors import ALL_COLLECTORS as DECLARED_COLLECTORS
from exporter.config import parse_config
from exporter.simulator import DEFAULT_SCENARIO, Simulator, load_scenario
from exporter.simulator.certs import CertFiles, self_signed

USERNAME = "admin"
PASSWORD = "admin-password"
BOM = b"\xef\xbb\xbf"
FAULTY, HEALTHY = "spe1", "spe2"
# Running instances of the fault scenario (umbrella is stopped and never asked).
RUNNING = ("acme", "globex", "hooli")
ALL_COLLECTORS = tuple(DECLARED_COLLECTORS)  # names, as declared by the collector classes


def fault_scenario() -> dict[str, Any]:
    """The default scenario without initech (service provider access off), so every
    collector succeeds while no fault is active."""
    data = yaml.safe_load(Path(DEFAULT_SCENARIO).read_text(encoding="utf-8"))
    data["instances"] = [i for i in data["instances"] if i["id"] != "initech"]
    return data


def make_simulator(port: int = 0, cert: CertFiles | None = None) -> Simulator:
    sim = Simulator(
        load_scenario(fault_scenario()),
        host="127.0.0.1",
        port=port,
        username=USERNAME,
        password=PASSWORD,
        certfile=cert.certfile if cert else None,
        keyfile=cert.keyfile if cert else None,
    )
    sim.state.clock.freeze()
    return sim


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------ the proxy


@dataclass
class Raw:
    """A response the proxy sends as is. ``length=None``: no Content-Length (the body
    ends when the connection closes)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    length: int | str | None = "auto"
    chunks: Callable[[], Iterator[bytes]] | None = None


Override = Callable[[dict[str, Any]], "dict[str, Any] | Raw"]


class RewritingProxy:
    """HTTPS in front of a simulator: forwards every request, except that ``overrides``
    can rewrite a function's envelope (or replace the answer). Its certificate can be
    swapped at run time: that closes the open (keep-alive) connections, so the next
    request makes a new TLS handshake and sees the new certificate at once."""

    def __init__(self, upstream: Simulator, cert: CertFiles) -> None:
        self.upstream = upstream
        self.overrides: dict[str, Override] = {}
        self._session = requests.Session()
        self._session.trust_env = False
        self._lock = threading.Lock()
        self._context = self._make_context(cert)
        self._connections: set[socket.socket] = set()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                proxy._handle(self)

            do_GET = do_POST

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, Any]:
                sock, addr = self.socket.accept()
                sock.settimeout(5)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle stalls
                with proxy._lock:
                    context = proxy._context
                tls = context.wrap_socket(sock, server_side=True)
                with proxy._lock:
                    proxy._connections.add(tls)
                return tls, addr

            def shutdown_request(self, request: Any) -> None:
                with proxy._lock:
                    proxy._connections.discard(request)
                super().shutdown_request(request)

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that reject our certificate, or hang up early

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="fault-proxy", daemon=True,
        )
        self._thread.start()

    @staticmethod
    def _make_context(cert: CertFiles) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert.certfile, cert.keyfile)
        return context

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def set_certificate(self, cert: CertFiles) -> None:
        with self._lock:
            self._context = self._make_context(cert)
        self.drop_connections()

    def drop_connections(self) -> None:
        """Close every open connection (clients must connect again)."""
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        function = handler.path.rsplit("/", 1)[-1]
        headers = {
            name: handler.headers[name]
            for name in ("Authorization", "Content-Type")
            if handler.headers.get(name)
        }
        upstream = self._session.request(
            handler.command, self.upstream.url + handler.path, data=body, headers=headers,
            verify=self.upstream.ca_file, timeout=10,
        )
        override = self.overrides.get(function)
        answer: Raw
        if override is None or upstream.status_code != 200:
            answer = Raw(
                upstream.status_code, upstream.content,
                upstream.headers.get("Content-Type", "application/json"),
            )
        else:
            envelope = json.loads(upstream.content.decode("utf-8-sig"))
            rewritten = override(envelope)
            answer = (
                rewritten if isinstance(rewritten, Raw)
                else Raw(body=BOM + json.dumps(rewritten).encode("utf-8"))
            )
        handler.send_response(answer.status)
        handler.send_header("Content-Type", answer.content_type)
        if answer.length == "auto":
            handler.send_header("Content-Length", str(len(answer.body)))
        elif answer.length is not None:
            handler.send_header("Content-Length", str(answer.length))
        else:
            handler.close_connection = True  # the body ends when the connection closes
            handler.send_header("Connection", "close")
        handler.end_headers()
        try:
            handler.wfile.write(answer.body)
            for chunk in answer.chunks() if answer.chunks else ():
                handler.wfile.write(chunk)
        except OSError:
            pass  # the client stopped reading (e.g. the response-size limit)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._session.close()


# --------------------------------------------------------------------- the exporter


def target_spec(url: str, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "url": url,
        "username": USERNAME,
        "password": PASSWORD,
        "timeouts": {"connect": "1s", "read": "500ms", "async_deadline": "1s"},
        "concurrency": 4,
    }
    spec.update(overrides)
    return spec


def make_exporter(
    faulty: dict[str, Any], healthy: dict[str, Any], clock: Callable[[], float]
) -> Exporter:
    config = parse_config(
        {"web": {"listen_address": "127.0.0.1:0"}, "targets": {FAULTY: faulty, HEALTHY: healthy}}
    )
    exp = Exporter(config, clock=clock)
    exp.start(serve=False, schedule=False)
    return exp


Key = tuple[str, tuple[tuple[str, str], ...]]


def metrics(exp: Exporter) -> dict[Key, float]:
    """(sample name, sorted label pairs) -> value, from the exporter's exposition."""
    text = exp.exposition.body(openmetrics=False, gzipped=False).content.decode("utf-8")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def k(target: str = FAULTY, **labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"target": target, **labels}.items()))


def success(values: dict[Key, float], collector: str, target: str = FAULTY) -> float:
    return values[("mailstore_spe_collector_success", k(target, collector=collector))]


def up(values: dict[Key, float], target: str = FAULTY) -> float:
    return values[("mailstore_spe_up", k(target))]


def failures(values: dict[Key, float], target: str = FAULTY) -> dict[tuple[str, str], float]:
    """(function, reason) -> count of mailstore_spe_api_request_failures_total, for the
    pairs that failed at all (every pair is exported, at 0 until its first failure)."""
    out = {}
    for (name, labels), value in values.items():
        if (
            name == "mailstore_spe_api_request_failures_total"
            and ("target", target) in labels
            and value
        ):
            d = dict(labels)
            out[(d["function"], d["reason"])] = value
    return out


def series_of(values: dict[Key, float], name: str, target: str = FAULTY) -> dict[Key, float]:
    return {
        key: v for key, v in values.items() if key[0] == name and ("target", target) in key[1]
    }


# ------------------------------------------------------------------------------ logs


class LogCapture(logging.Handler):
    """Every record of the ``exporter`` loggers (attached directly: independent of any
    logging set-up other tests may have made)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def clear(self) -> None:
        self.records.clear()

    def health(self, message: str, target: str = FAULTY) -> list[logging.LogRecord]:
        return [
            r for r in self.records
            if r.name == "exporter.health" and r.getMessage() == message
            and getattr(r, "target", None) == target
        ]

    def by_collector(self, message: str, target: str = FAULTY) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.health(message, target):
            out[r.collector] = out.get(r.collector, 0) + 1  # type: ignore[attr-defined]
        return out

    def errors(self) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno >= logging.ERROR]


# --------------------------------------------------------------------------- threads

_INFRASTRUCTURE = ("_serve_connection", "process_request_thread", "spe-simulator", "fault-proxy")


def thread_census(targets: tuple[str, ...] = (FAULTY, HEALTHY)) -> tuple[int, dict[str, int]]:
    """(exporter threads outside the per-target pools, threads of each target's pool).

    Test infrastructure (simulator and proxy connection threads) is left out: a hanging
    simulator request legitimately holds its server thread.
    """
    names = [t.name for t in threading.enumerate()]
    names = [n for n in names if not any(mark in n for mark in _INFRASTRUCTURE)]
    pools = {t: sum(1 for n in names if n.startswith(f"spe-{t}_")) for t in targets}
    return len(names) - sum(pools.values()), pools


def cert_files(name: str) -> CertFiles:
    """A fresh self-signed certificate (valid for 127.0.0.1) in a temporary directory."""
    return self_signed(tempfile.mkdtemp(prefix=f"fault-cert-{name}-"), "127.0.0.1")
