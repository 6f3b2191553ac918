"""Benchmark 3: exporter memory and CPU per poll cycle (issue 7).

    .venv/bin/python benchmarks/memory.py --instances 5000

Runs the real command ``mailstore-spe-exporter --config.file ...`` (every collector
enabled, all at the same ``--interval``, otherwise default settings: concurrency 8 unless
``--concurrency``) against ``mailstore-spe-simulator --scenario <generated N instances>``,
both as subprocesses on loopback. It scrapes /metrics (gzip) every ``--scrape-every``
seconds (default 0.5: twice a second, as a busy Prometheus set-up would) and sees each
collector's runs finish there (``mailstore_spe_collector_duration_seconds`` changes); at
each scrape it reads the exporter's VmRSS and utime+stime from /proc. Reported after
``--cycles`` full cycles (default 3): VmHWM (the kernel's peak of resident memory over the
whole run, start-up included), the highest sampled RSS, RSS after each cycle and 2 s
after the last (steady state), and the exporter's CPU seconds per cycle and per instance
(cycles after the first: no start-up costs).
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
    stop_process,
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
    parser.add_argument("--concurrency", type=int, default=None,
                        help="target concurrency (default: the exporter's default, 8)")
    parser.add_argument("--interval", type=float, default=None,
                        help="seconds between runs of every collector "
                        "(default: max(60, 0.036 s x instances))")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--scrape-every", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    interval = args.interval or max(60.0, 0.036 * args.instances)
    banner("memory")

    sim = SimulatorProcess(args.instances)
    workdir = tempfile.TemporaryDirectory(prefix="spe-bench-exp-")
    port = free_port()
    overrides: dict = {
        "collectors": {name: {"interval": f"{interval:g}s"} for name in ALL_COLLECTORS},
    }
    if args.concurrency is not None:
        overrides["concurrency"] = args.concurrency
    config = exporter_config(sim.url, sim.ca_file, **overrides)
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
    print(f"instances={args.instances} concurrency={args.concurrency or 'default (8)'} "
          f"interval={interval:g}s collectors={len(ALL_COLLECTORS)} "
          f"scrapes every {args.scrape_every:g} s")
    started = time.monotonic()
    runs = dict.fromkeys(ALL_COLLECTORS, 0)
    last: dict[str, bytes] = {}
    cycle_marks: list[tuple[float, float, float]] = []  # (elapsed, rss, cpu) per cycle
    peak = 0.0
    hwm_steps: list[tuple[float, float]] = []  # (elapsed, VmHWM) whenever it grew by 1 MB
    scrapes = 0
    try:
        while time.monotonic() - started < args.timeout:
            time.sleep(args.scrape_every)
            if exporter.poll() is not None:
                raise SystemExit(f"the exporter exited with {exporter.returncode}")
            rss = rss_mb(exporter.pid)
            peak = max(peak, rss)
            hwm_now = rss_mb(exporter.pid, "VmHWM")
            if not hwm_steps or hwm_now >= hwm_steps[-1][1] + 1.0:
                hwm_steps.append((time.monotonic() - started, hwm_now))
            try:
                now = durations(port)
            except OSError:
                continue
            scrapes += 1
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
        hwm = rss_mb(exporter.pid, "VmHWM")
        kinds = memory_map(exporter.pid)
    finally:
        stop_process(exporter, timeout=15)
        sim.stop()
        workdir.cleanup()

    if len(cycle_marks) < max(2, args.cycles):
        print(f"only {len(cycle_marks)} cycle(s) within --timeout; runs={runs}")
        raise SystemExit(1)
    cpu_cycle = (cycle_marks[-1][2] - cycle_marks[0][2]) / (len(cycle_marks) - 1)
    after = ", ".join(f"{mark[1]:.1f}" for mark in cycle_marks)
    print(f"RESULT instances={args.instances}: VmHWM {hwm:.1f} MB, highest sampled RSS "
          f"{peak:.1f} MB, steady RSS {final_rss:.1f} MB (2 s after cycle {len(cycle_marks)}); "
          f"RSS after each cycle {after} MB; {scrapes} scrapes; CPU per cycle "
          f"{cpu_cycle:.2f} s = {cpu_cycle / args.instances * 1000:.2f} ms per instance")
    print("VmHWM grew (elapsed s: MB): "
          + ", ".join(f"{at:.1f}: {mb:.1f}" for at, mb in hwm_steps[-8:]))
    print("resident MB by mapping: " + ", ".join(f"{k} {v:.1f}" for k, v in kinds.items()))


if __name__ == "__main__":
    main()
