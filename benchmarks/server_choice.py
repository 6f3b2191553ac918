"""Which HTTP server for the exporter's endpoint (issue 13): cheroot vs the exporter's own.

    pip install cheroot   # not a dependency of the exporter: only this comparison needs it
    .venv/bin/python benchmarks/server_choice.py

Both serve the same prebuilt bodies (a 1.3 MB "gzip" body and a 20 MB "text" body) over
keep-alive HTTPS on loopback; p50/p99 of ``--scrapes`` scrapes each (3 rounds: min/median/max
of the p50s). Then the property that decided: one client opens a TCP connection to the TLS
port and stays silent; how long does a second, normal scrape take meanwhile?
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time

from _common import banner, percentiles

BODIES = {"gzip-size": os.urandom(1_300_000), "text-size": b"x" * 20_000_000}


def tls_files(folder: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def cheroot_server(context: ssl.SSLContext, timeout: float) -> tuple[object, int]:
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    def app(environ, start_response):
        body = BODIES[environ["PATH_INFO"].strip("/")]
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=8, max=16, timeout=timeout,
                         accepted_queue_size=64)
    adapter = BuiltinSSLAdapter.__new__(BuiltinSSLAdapter)
    adapter.context = context
    adapter.certificate = adapter.private_key = adapter.certificate_chain = None
    adapter.ciphers = None
    adapter._server_env = {}
    server.ssl_adapter = adapter
    server.prepare()
    threading.Thread(target=server.serve, daemon=True).start()
    return server, server.bind_addr[1]


def exporter_server(context: ssl.SSLContext) -> tuple[object, int]:
    from exporter.exposition import Body
    from exporter.web import ExporterHTTPServer, WebServer

    class Fixed:
        def body(self, *, openmetrics: bool, gzipped: bool) -> Body:
            return Body((self.current,), "text/plain", False, len(self.current))

    fixed = Fixed()
    server = ExporterHTTPServer(("127.0.0.1", 0), exposition=fixed, health=None,
                                is_ready=lambda: True, targets=dict, ssl_context=context)
    web = WebServer(server)
    web.start()
    return (web, fixed), web.address[1]


def scrape(port: int, context: ssl.SSLContext, path: str, count: int) -> list[float]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        times.append(time.perf_counter() - started)
        assert response.status == 200, response.status
    conn.close()
    return times


def silent_client_stall(port: int, context: ssl.SSLContext, path: str) -> float:
    silent = socket.create_connection(("127.0.0.1", port))
    time.sleep(0.2)
    started = time.perf_counter()
    try:
        scrape(port, context, path, 1)
        return time.perf_counter() - started
    finally:
        silent.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scrapes", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=5.0, help="cheroot's socket timeout")
    args = parser.parse_args()
    banner("server_choice")
    with tempfile.TemporaryDirectory():
        server_ctx, client_ctx = tls_files("")
    cheroot, cport = cheroot_server(server_ctx, args.timeout)
    (web, fixed), eport = exporter_server(server_ctx)
    print(f"{'body':10} {'server':9} {'p50 ms (min/med/max of 3)':>28} {'p99 ms (med)':>12}")
    for name, body in BODIES.items():
        fixed.current = body
        for label, port, path in (("cheroot", cport, f"/{name}"), ("exporter", eport, "/metrics")):
            p50s, p99s = [], []
            for _ in range(3):
                p50, p99 = percentiles(scrape(port, client_ctx, path, args.scrapes))
                p50s.append(p50 * 1000)
                p99s.append(p99 * 1000)
            print(f"{name:10} {label:9} {min(p50s):8.2f} / {statistics.median(p50s):7.2f} / "
                  f"{max(p50s):7.2f} {statistics.median(p99s):12.2f}")
    fixed.current = BODIES["gzip-size"]
    print()
    for label, port, path in (("cheroot", cport, "/gzip-size"), ("exporter", eport, "/metrics")):
        took = silent_client_stall(port, client_ctx, path)
        print(f"scrape while one TLS client stays silent: {label:9} {took * 1000:9.1f} ms")
    cheroot.stop()
    web.stop()


if __name__ == "__main__":
    sys.exit(main())
