"""Soak test: the exporter against a simulator with random faults, scraped every second.

Not a unit test: run it by hand (or before a release) and read its report.

    .venv/bin/python scripts/soak.py --duration 600

It starts the SPE simulator in this process (so it can inject faults) and the exporter
as a subprocess with short collector intervals, scrapes /metrics every second, and every
few seconds injects or clears a random fault: HTTP 500, invalid JSON, truncated bodies,
dropped connections, hanging and slow calls, API errors, calls that turn long-running,
stopped instances, rotated credentials. At the end it prints scrapes served, failed
scrapes, and the exporter's memory, threads and file descriptors after warm-up and at
the end, and exits 1 if a scrape failed or anything grew beyond the stated bounds.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

from exporter.simulator import DEFAULT_SCENARIO, Simulator, load_scenario

# Growth allowed between the end of warm-up and the end of the run.
MAX_RSS_GROWTH_MB = 25.0
MAX_THREAD_GROWTH = 8
MAX_FD_GROWTH = 16

FUNCTIONS = [
    "GetServiceStatus", "GetEnvironmentInfo", "GetInstances", "GetInstanceStatistics",
    "GetStores", "GetInstanceProcessLiveStatistics", "GetProfiles", "GetWorkerResults",
    "GetJobs", "GetJobResults", "GetUsers", "GetComplianceConfiguration", "GetCredentials",
]  # fmt: skip
FAULTS = [
    ("http_status", {"status": 500}),
    ("http_status", {"status": 503}),
    ("invalid_json", {}),
    ("truncated", {}),
    ("drop_connection", {}),
    ("hang", {"seconds": 8}),
    ("latency", {"seconds": 0.5}),
    ("api_error", {"message": "Soak test failure.", "details": "injected"}),
    ("long_running", {"steps": 3, "step_seconds": 0.3}),
    ("long_running", {"steps": 2, "step_seconds": 0.3, "outcome": "failed",
                      "error_message": "Injected failure."}),
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_figures(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def _inject(sim: Simulator, rng: random.Random, active: list[str]) -> str:
    """Inject or clear one fault; returns a short description for the log."""
    roll = rng.random()
    state = sim.state
    if active and roll < 0.4:
        state.clear_faults()
        state.set_credentials("admin", "soak-password")
        for iid in ("acme", "hooli"):
            try:
                state.start_instance(iid)
            except Exception:  # noqa: BLE001 - already running, fine
                pass
        active.clear()
        return "cleared all faults"
    if roll < 0.5:
        state.set_credentials("admin", "rotated-elsewhere")
        active.append("credentials")
        return "credentials rotated (401)"
    if roll < 0.6:
        iid = rng.choice(["acme", "hooli"])
        state.stop_instance(iid, error="Soak test stop")
        active.append(f"stop {iid}")
        return f"stopped {iid}"
    function = rng.choice(FUNCTIONS)
    kind, params = rng.choice(FAULTS)
    state.set_fault(function, kind, **params)
    active.append(f"{kind} {function}")
    return f"{kind} on {function}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds (default 600)")
    parser.add_argument("--warmup", type=float, default=30, help="seconds before the baseline")
    parser.add_argument("--fault-every", type=float, default=5, help="seconds between faults")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    sim = Simulator(load_scenario(DEFAULT_SCENARIO), host="127.0.0.1", port=0,
                    username="admin", password="soak-password")  # fmt: skip
    sim.start()
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yml"
        collectors = {name: {"interval": "3s"} for name in (
            "environment", "service", "instances", "statistics", "stores", "process",
            "profiles", "jobs", "users", "compliance", "credentials")}  # fmt: skip
        config.write_text(yaml.safe_dump({
            "web": {"listen_address": f"127.0.0.1:{port}"},
            "log": {"level": "warning"},
            "targets": {"soak": {
                "url": sim.url, "username": "admin", "password": "soak-password",
                "tls": {"ca_file": str(sim.ca_file)},
                "timeouts": {"connect": "2s", "read": "4s", "async_deadline": "5s"},
                "collectors": collectors,
            }},
        }))  # fmt: skip
        config.chmod(0o600)
        log_path = Path(tmp) / "exporter.log"
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "exporter.cli", f"--config.file={config}"],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                return _run(args, rng, sim, proc, port, log_path)
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                sim.stop()


def _run(args, rng, sim, proc, port, log_path) -> int:
    session = requests.Session()
    url = f"http://127.0.0.1:{port}/metrics"
    served = failed = 0
    slowest = 0.0
    active: list[str] = []
    baseline: dict[str, float] | None = None
    started = time.monotonic()
    next_fault = started + args.warmup
    while time.monotonic() - started < args.duration:
        tick = time.monotonic()
        try:
            response = session.get(url, timeout=5)
            if response.status_code == 200 and "mailstore_spe_up" in response.text:
                served += 1
            else:
                failed += 1
                print(f"scrape failed: HTTP {response.status_code}", flush=True)
        except requests.RequestException as exc:
            if time.monotonic() - started > 5:  # the exporter may still be starting
                failed += 1
                print(f"scrape failed: {exc}", flush=True)
        slowest = max(slowest, time.monotonic() - tick)
        if baseline is None and time.monotonic() - started >= args.warmup:
            baseline = _proc_figures(proc.pid)
            print(f"baseline after warm-up: {baseline}", flush=True)
        if time.monotonic() >= next_fault:
            print(f"{time.monotonic() - started:6.0f}s fault: {_inject(sim, rng, active)}",
                  flush=True)  # fmt: skip
            next_fault += args.fault_every
        if proc.poll() is not None:
            print(f"exporter exited with {proc.returncode}", flush=True)
            failed += 1
            break
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    end = _proc_figures(proc.pid) if proc.poll() is None else None
    baseline = baseline or end
    log_lines = len(log_path.read_text().splitlines())
    print("\n== soak report")
    print(f"duration: {args.duration:.0f} s, seed {args.seed}, fault every {args.fault_every} s")
    print(f"scrapes served: {served}, failed scrapes: {failed}, slowest scrape: {slowest:.3f} s")
    print(f"exporter log lines (warning and above): {log_lines}")
    ok = failed == 0 and end is not None
    if end is not None and baseline is not None:
        growth = {k: end[k] - baseline[k] for k in end}
        print(f"after warm-up: rss {baseline['rss_mb']:.1f} MB, threads {baseline['threads']:.0f}"
              f", fds {baseline['fds']:.0f}")  # fmt: skip
        print(f"at the end:    rss {end['rss_mb']:.1f} MB, threads {end['threads']:.0f}"
              f", fds {end['fds']:.0f}")  # fmt: skip
        print(f"bounds: rss +{MAX_RSS_GROWTH_MB} MB, threads +{MAX_THREAD_GROWTH}, "
              f"fds +{MAX_FD_GROWTH}")  # fmt: skip
        within = (
            growth["rss_mb"] <= MAX_RSS_GROWTH_MB
            and growth["threads"] <= MAX_THREAD_GROWTH
            and growth["fds"] <= MAX_FD_GROWTH
        )
        print(f"growth within bounds: {within}")
        ok = ok and within
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
