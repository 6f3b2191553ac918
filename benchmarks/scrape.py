"""Benchmark 1: the cost of a /metrics scrape (issue 7).

    .venv/bin/python benchmarks/scrape.py --instances 5000

The exporter's real HTTP server is filled with data of the shape a poll of N instances
produces (a real poll of a small simulator scenario, each instance's samples replicated
N times and swapped into the snapshot store). Scrapes go through ``http.client`` with
keep-alive and read the whole body; p50/p99 over ``--scrapes`` scrapes per case, for the
text format and OpenMetrics, with and without gzip. Compared in the same run against:

* (a) the straightforward prometheus_client way: one Gauge with labels per sample name
  holding the same series, ``generate_latest`` (and gzip) on every scrape, served by a
  bare ``http.server`` handler (fewer scrapes: it is slow; see ``--baseline-seconds``);
* (floor) a bare ``http.server`` serving prebuilt bytes of the same size;
* (raw floor) a raw socket server: prebuilt head + body, one ``sendall``, ``TCP_NODELAY``
  (the least any HTTP server in Python can do).

The script asserts that the body holds the series it claims: every one of the N instances
and at least as many series as were swapped in. Scrapes during a real poll (polling threads
against the simulator, client in another process): ``benchmarks/scrape_poll.py``.
Everything runs in this one process on loopback; compare the ratios, not the absolute
numbers.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _common import (
    RawFloor,
    banner,
    exporter_for,
    percentiles,
    populate_synthetic,
    start_simulator,
)
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import generate_latest as generate_text
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

OM_ACCEPT = "application/openmetrics-text; version=1.0.0"
CASES = [  # (label, openmetrics, gzip)
    ("text", False, False),
    ("text+gzip", False, True),
    ("openmetrics", True, False),
    ("openmetrics+gzip", True, True),
]


def headers_for(openmetrics: bool, gzipped: bool) -> dict[str, str]:
    return {
        "Accept": OM_ACCEPT if openmetrics else "text/plain",
        "Accept-Encoding": "gzip" if gzipped else "identity",
    }


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def reply(self, body: bytes, content_type: str, gzipped: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        self.wfile.write(body)


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def floor_server(bodies: dict[tuple[bool, bool], bytes]) -> ThreadingHTTPServer:
    """Prebuilt bytes, nothing else."""

    class Floor(_Quiet):
        def do_GET(self):
            om = "openmetrics" in (self.headers.get("Accept") or "")
            gz = "gzip" in (self.headers.get("Accept-Encoding") or "")
            self.reply(bodies[(om, gz)], "text/plain", gz)

    return serve(Floor)


def client_library_server(samples) -> tuple[ThreadingHTTPServer, float]:
    """(a): prometheus_client Gauges with labels, generate_latest on each scrape."""
    registry = CollectorRegistry()
    gauges: dict[str, Gauge] = {}
    started = time.perf_counter()
    for s in samples:
        gauge = gauges.get(s.name)
        if gauge is None:
            names = [k for k, _ in s.labels]
            gauge = gauges[s.name] = Gauge(s.name, s.name, names, registry=registry)
        if s.labels:
            gauge.labels(*[v for _, v in s.labels]).set(s.value)
        else:
            gauge.set(s.value)
    setup = time.perf_counter() - started

    class Baseline(_Quiet):
        def do_GET(self):
            om = "openmetrics" in (self.headers.get("Accept") or "")
            gz = "gzip" in (self.headers.get("Accept-Encoding") or "")
            body = generate_openmetrics(registry) if om else generate_text(registry)
            if gz:
                body = gzip.compress(body, compresslevel=6)
            self.reply(body, "text/plain", gz)

    return serve(Baseline), setup


def scrape_times(port: int, openmetrics: bool, gzipped: bool, count: int, budget: float):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = headers_for(openmetrics, gzipped)
    times: list[float] = []
    size = 0
    deadline = time.perf_counter() + budget
    for _ in range(count):
        started = time.perf_counter()
        conn.request("GET", "/metrics", headers=headers)
        response = conn.getresponse()
        body = response.read()
        times.append(time.perf_counter() - started)
        size = len(body)
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status} from port {port}")
        if time.perf_counter() > deadline and len(times) >= 5:
            break
    conn.close()
    return times, size


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--baseline-seconds", type=float, default=20.0,
                        help="time budget per case of (a); at least 5 scrapes")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    banner("scrape")

    sim = start_simulator(min(args.instances, 20))
    exp = exporter_for(sim, concurrency=8)
    exp.start(serve=True, schedule=False)
    port = exp.web.address[1]
    populate_took = time.perf_counter()
    swapped = populate_synthetic(exp, sim, args.instances)
    populate_took = time.perf_counter() - populate_took
    sim.stop()

    # The first bodies after the data changed, as the first scrape after a collector run
    # builds them (in-process, no HTTP): large blocks are kept deflated (issue 16), so the
    # first uncompressed body inflates every one of them; later ones reuse that text.
    cold = {}
    for label, om, gz in CASES:
        started = time.perf_counter()
        exp.exposition.body(openmetrics=om, gzipped=gz)
        cold[label] = time.perf_counter() - started
    print("first body after every block changed (in-process, no HTTP): "
          + ", ".join(f"{label} {ms(t).strip()} ms" for label, t in cold.items()))

    bodies = {}
    for _, om, gz in CASES:
        body = exp.exposition.body(openmetrics=om, gzipped=gz)
        bodies[(om, gz)] = b"".join(body.parts) if hasattr(body, "parts") else body.content
    plain = bodies[(False, False)]
    series = sum(1 for line in plain.split(b"\n") if line and not line.startswith(b"#"))
    swapped_series = sum(len(samples) for samples in swapped.values())
    instance_ids = set(re.findall(rb'instance_id="(bench\d+)"', plain))
    print(f"instances={args.instances} series={series} ({series / args.instances:.1f}"
          f"/instance; {swapped_series} swapped in) text={len(plain) / 1e6:.1f} MB "
          f"text+gzip={len(bodies[(False, True)]) / 1e6:.2f} MB "
          f"(populate + render {populate_took:.1f} s)")
    # The case must be what it claims (issue 16: it once served 9 % of its series).
    assert len(instance_ids) == args.instances, (len(instance_ids), args.instances)
    assert series >= swapped_series, (series, swapped_series)
    for (om, gz), body in bodies.items():
        text = gzip.decompress(body) if gz else body
        count = sum(1 for line in text.split(b"\n") if line and not line.startswith(b"#"))
        assert count == series, ((om, gz), count, series)

    floor = floor_server(bodies)
    raw = RawFloor(bodies)
    baseline = None
    if not args.skip_baseline:
        all_samples = [s for samples in swapped.values() for s in samples]
        baseline, setup = client_library_server(all_samples)
        print(f"(a) prometheus_client: {len(all_samples)} series set in {setup:.1f} s")

    print()
    print(f"{'case':18} {'server':22} {'n':>4} {'p50 ms':>8} {'p99 ms':>8} {'bytes':>10} "
          f"{'p50/floor':>9} {'p50/raw':>8} {'(a)/exp p50':>11}")
    for label, om, gz in CASES:
        rows = {}
        for name, srv_port, count, budget in (
            ("raw floor (1 sendall)", raw.server_address[1], args.scrapes, 1e9),
            ("floor (prebuilt bytes)", floor.server_address[1], args.scrapes, 1e9),
            ("exporter", port, args.scrapes, 1e9),
            ("(a) prometheus_client", baseline.server_address[1] if baseline else None,
             args.scrapes, args.baseline_seconds),
        ):
            if srv_port is None:
                continue
            times, size = scrape_times(srv_port, om, gz, count, budget)
            rows[name] = (len(times), *percentiles(times), size)
        floor_p50 = rows["floor (prebuilt bytes)"][1]
        raw_p50 = rows["raw floor (1 sendall)"][1]
        exp_p50 = rows["exporter"][1]
        for name, (n, p50, p99, size) in rows.items():
            vs_a = ""
            if name.startswith("(a)"):
                vs_a = f"{p50 / exp_p50:10.1f}x"
            print(f"{label:18} {name:22} {n:4d} {ms(p50)} {ms(p99)} {size:10d} "
                  f"{p50 / floor_p50:8.2f}x {p50 / raw_p50:7.2f}x {vs_a:>11}")
        print(f"RESULT {label}: exporter p50 / raw floor p50 = {exp_p50 / raw_p50:.2f}x, "
              f"/ http.server floor p50 = {exp_p50 / floor_p50:.2f}x")

    exp.stop()
    floor.shutdown()
    raw.shutdown()
    if baseline:
        baseline.shutdown()


if __name__ == "__main__":
    main()
