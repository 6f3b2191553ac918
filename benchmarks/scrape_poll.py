"""Benchmark: scrapes while a real poll runs (issue 16).

    .venv/bin/python benchmarks/scrape_poll.py --instances 5000 --latency 0 0.05

One exporter process (this one) with two targets:

* ``bench``: filled once with data of the shape a poll of N instances produces (as
  ``scrape.py`` does), so the body has the full size of N instances;
* ``poll``: the real collectors (``--collectors``, default ``stores profiles jobs``)
  polling ``mailstore-spe-simulator`` with N generated instances, in its own process,
  with ``--latency`` seconds per API call (0 = CPU-bound), at the default concurrency (8).
  One thread per collector runs it again as soon as it ends, so a poll is always running
  (at default intervals and 5000 instances, one mostly is).

The scrape client is another process (``--client``): gzip scrapes (``http.client``,
keep-alive, ``--gap`` seconds apart) for ``--seconds``, first idle (after one pass of every
collector, so the body is full), then while the polling threads run. Printed per latency:
idle and during-poll p50/p99 and the ratios of one run; targets (issue 16): p50 <= 2x and
p99 <= 3x idle. For comparison the same is measured against a raw-socket server in this
process (the exporter's gzip body prebuilt, one ``sendall`` per request, ``TCP_NODELAY``):
what any server thread of this interpreter pays while the polling threads run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time

from _common import (
    TARGET,
    RawFloor,
    SimulatorProcess,
    banner,
    percentiles,
    populate_synthetic,
    start_simulator,
    target_spec,
)

from exporter.app import Exporter
from exporter.config import parse_config

POLL = "poll"


def client(port: int, seconds: float, gap: float, gzipped: bool) -> None:
    """The scrape client (its own process): prints the scrape times as JSON."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Accept-Encoding": "gzip" if gzipped else "identity"}
    times = []
    size = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        conn.request("GET", "/metrics", headers=headers)
        response = conn.getresponse()
        size = len(response.read())
        times.append(time.perf_counter() - started)
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}")
        time.sleep(gap)
    print(json.dumps({"times": times, "bytes": size}))


def scrape_from_other_process(port: int, seconds: float, gap: float) -> tuple[list[float], int]:
    out = subprocess.run(
        [sys.executable, __file__, "--client", str(port), "--seconds", str(seconds),
         "--gap", str(gap)],
        check=True, capture_output=True, text=True,
    ).stdout
    data = json.loads(out)
    return data["times"], data["bytes"]


def run_case(args: argparse.Namespace, latency: float) -> None:
    sim = SimulatorProcess(args.instances, latency=latency)
    small = start_simulator(20)
    exp = Exporter(parse_config({
        "web": {"listen_address": "127.0.0.1:0"},
        "targets": {
            TARGET: target_spec(small.url, small.ca_file),
            POLL: target_spec(sim.url, sim.ca_file),
        },
    }))
    try:
        exp.start(serve=True, schedule=False)
        port = exp.web.address[1]
        populate_synthetic(exp, small, args.instances)
        small.stop()
        poller = exp.poller
        concurrency = poller.targets[POLL].concurrency
        started = time.perf_counter()
        poller.run_collector(POLL, "instances")
        for name in args.collectors:  # one pass: the body is full before "idle"
            poller.run_collector(POLL, name)
        prefill = time.perf_counter() - started
        body = exp.exposition.body(openmetrics=False, gzipped=True)
        body_times: list[float] = []
        real_body = exp.exposition.body

        def timed_body(**kwargs):  # where a scrape's time goes: getting the body, or not
            t0 = time.perf_counter()
            try:
                return real_body(**kwargs)
            finally:
                body_times.append(time.perf_counter() - t0)

        exp.exposition.body = timed_body  # type: ignore[method-assign]
        raw = RawFloor({(False, True): b"".join(body.parts)})
        idle, size = scrape_from_other_process(port, args.seconds, args.gap)
        body_idle, body_times[:] = list(body_times), []
        raw_idle, _ = scrape_from_other_process(raw.server_address[1], args.seconds, args.gap)

        stop = threading.Event()
        runs = dict.fromkeys(args.collectors, 0)

        def loop(name: str) -> None:
            while not stop.is_set():
                poller.run_collector(POLL, name)
                runs[name] += 1

        threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in args.collectors]
        for t in threads:
            t.start()
        time.sleep(1.0)  # every collector is in its run
        busy, size_busy = scrape_from_other_process(port, args.seconds, args.gap)
        body_busy = list(body_times)
        raw_busy, _ = scrape_from_other_process(raw.server_address[1], args.seconds, args.gap)
        stop.set()
        raw.shutdown()
        for t in threads:
            t.join()
    finally:
        exp.stop()
        sim.stop()
    i50, i99 = percentiles(idle)
    b50, b99 = percentiles(busy)
    label = "CPU-bound" if not latency else f"{latency * 1000:g} ms latency"
    print(f"{label}: instances={args.instances} C={concurrency} collectors="
          f"{','.join(args.collectors)} prefill {prefill:.1f} s; gzip body {size} bytes idle, "
          f"{size_busy} during poll; runs during scrapes {runs}")
    print(f"  idle        scrapes={len(idle):4d} p50={i50 * 1000:7.2f} ms p99={i99 * 1000:7.2f} ms "
          f"max={max(idle) * 1000:7.2f} ms")
    print(f"  during poll scrapes={len(busy):4d} p50={b50 * 1000:7.2f} ms p99={b99 * 1000:7.2f} ms "
          f"max={max(busy) * 1000:7.2f} ms")
    for name, times in (("body() idle", body_idle), ("body() poll", body_busy),
                        ("raw idle", raw_idle), ("raw during", raw_busy)):
        p50, p99 = percentiles(times)
        print(f"  {name:11} scrapes={len(times):4d} p50={p50 * 1000:7.2f} ms "
              f"p99={p99 * 1000:7.2f} ms max={max(times) * 1000:7.2f} ms")
    r50 = percentiles(raw_busy)[0] / percentiles(raw_idle)[0]
    r99 = percentiles(raw_busy)[1] / percentiles(raw_idle)[1]
    p50_ok = "met" if b50 <= 2 * i50 else "missed"
    p99_ok = "met" if b99 <= 3 * i99 else "missed"
    print(f"RESULT {label}: during/idle p50 {b50 / i50:.2f}x (target <= 2x: {p50_ok}), "
          f"p99 {b99 / i99:.2f}x (target <= 3x: {p99_ok}); raw-socket server in the same "
          f"process: p50 {r50:.2f}x, p99 {r99:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=5000)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.05])
    parser.add_argument("--collectors", nargs="+", default=["stores", "profiles", "jobs"])
    parser.add_argument("--seconds", type=float, default=20.0, help="per scrape series")
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between scrapes")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval for this process (experiments)")
    parser.add_argument("--client", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client is not None:
        client(args.client, args.seconds, args.gap, gzipped=True)
        return
    banner("scrape_poll")
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    print(f"# GIL switch interval {sys.getswitchinterval() * 1000:g} ms")
    for latency in args.latency:
        run_case(args, latency)


if __name__ == "__main__":
    main()
