"""Benchmark 3: exporter memory and CPU per poll cycle (issue 7).

    .venv/bin/python benchmarks/memory.py --instances 5000

Runs the real command ``mailstore-spe-exporter --config.file ...`` (every collector
enabled, all at the same ``--interval``) against ``mailstore-spe-simulator --scenario
<generated N instances>``, both as subprocesses on loopback. Every second it reads the
exporter's VmRSS from /proc/<pid>/status and utime+stime from /proc/<pid>/stat, and it
scrapes /metrics (gzip) to see each collector's runs finish
(``mailstore_spe_collector_duration_seconds`` changes). Reported: RSS after the first
full cycle, after the second (steady state), the peak, and the exporter's CPU seconds per
cycle and per instance (second cycle: no start-up costs).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import os
import re
import subprocess
import sys
import tempfile
import time

import yaml
from _common import (
    ROOT,
    SimulatorProcess,
    banner,
    cpu_seconds,
    exporter_config,
    memory_map,
    rss_mb,
)

from exporter.collectors import ALL_COLLECTORS

DURATION_LINE = re.compile(
    rb'^mailstore_spe_collector_duration_seconds\{[^}]*collector="([a-z_]+)"[^}]*\} (\S+)$',
    re.M,
)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def durations(port: int) -> dict[str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.getheader("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return {m.group(1).decode(): m.group(2) for m in DURATION_LINE.finditer(body)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--interval", type=float, default=None,
                        help="seconds between runs of every collector "
                        "(default: max(60, 0.036 s x instances))")
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    interval = args.interval or max(60.0, 0.036 * args.instances)
    banner("memory")

    sim = SimulatorProcess(args.instances)
    workdir = tempfile.TemporaryDirectory(prefix="spe-bench-exp-")
    port = free_port()
    config = exporter_config(
        sim.url, sim.ca_file, concurrency=args.concurrency,
        collectors={name: {"interval": f"{interval:g}s"} for name in ALL_COLLECTORS},
    )
    config["web"]["listen_address"] = f"127.0.0.1:{port}"
    config["log"] = {"level": "warning"}
    config_file = os.path.join(workdir.name, "exporter.yml")
    with open(config_file, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f)
    os.chmod(config_file, 0o600)
    exe = os.path.join(os.path.dirname(sys.executable), "mailstore-spe-exporter")
    command = [exe] if os.path.exists(exe) else [sys.executable, "-m", "exporter.cli"]
    exporter = subprocess.Popen(
        [*command, "--config.file", config_file], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    print(f"instances={args.instances} concurrency={args.concurrency} "
          f"interval={interval:g}s collectors={len(ALL_COLLECTORS)}")
    started = time.monotonic()
    runs = dict.fromkeys(ALL_COLLECTORS, 0)
    last: dict[str, bytes] = {}
    cycle_marks: list[tuple[float, float, float]] = []  # (elapsed, rss, cpu) per cycle
    peak = 0.0
    try:
        while time.monotonic() - started < args.timeout:
            time.sleep(1.0)
            if exporter.poll() is not None:
                raise SystemExit(f"the exporter exited with {exporter.returncode}")
            rss = rss_mb(exporter.pid)
            peak = max(peak, rss)
            try:
                now = durations(port)
            except OSError:
                continue
            for name, value in now.items():
                if name in runs and last.get(name) != value:
                    runs[name] += 1
            last = now
            done = min(runs.values())
            if done > len(cycle_marks):
                mark = (time.monotonic() - started, rss, cpu_seconds(exporter.pid))
                cycle_marks.append(mark)
                print(f"cycle {done} complete after {mark[0]:6.1f} s: RSS {rss:6.1f} MB, "
                      f"exporter CPU {mark[2]:7.2f} s, simulator CPU "
                      f"{sim.cpu_seconds():7.2f} s")
                if done >= args.cycles:
                    break
        time.sleep(2.0)
        final_rss = rss_mb(exporter.pid)
        kinds = memory_map(exporter.pid)
    finally:
        exporter.terminate()
        try:
            exporter.wait(timeout=15)
        except subprocess.TimeoutExpired:
            exporter.kill()
        sim.stop()
        workdir.cleanup()

    if len(cycle_marks) < 2:
        print(f"only {len(cycle_marks)} cycle(s) within --timeout; runs={runs}")
        return
    cpu_cycle = cycle_marks[1][2] - cycle_marks[0][2]
    print(f"RESULT instances={args.instances}: RSS after cycle 1 {cycle_marks[0][1]:.1f} MB, "
          f"after cycle 2 {cycle_marks[1][1]:.1f} MB, 2 s later {final_rss:.1f} MB, "
          f"peak {peak:.1f} MB; CPU per cycle {cpu_cycle:.2f} s = "
          f"{cpu_cycle / args.instances * 1000:.2f} ms per instance")
    print("resident MB by mapping: " + ", ".join(f"{k} {v:.1f}" for k, v in kinds.items()))


if __name__ == "__main__":
    main()
