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

It checks function, not only survival: every scrape must pass the exposition parser; each
time the faults are cleared (and once more at the end), no new fault is injected until
``mailstore_spe_up`` is back to 1 and every collector's last-success timestamp has
advanced, within ``--recovery-timeout`` seconds, else the run FAILs. ``--pythonpath``
puts a directory first on the exporter's path (a sitecustomize.py there can break the
exporter on purpose: tests/soak proves that a broken exporter makes the soak FAIL).
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
from prometheus_client.parser import text_string_to_metric_families

from exporter.collectors import ALL_COLLECTORS
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


def _clear(sim: Simulator, active: list[str]) -> None:
    state = sim.state
    state.clear_faults()
    state.set_credentials("admin", "soak-password")
    for iid in ("acme", "hooli"):
        try:
            state.start_instance(iid)
        except Exception:  # noqa: BLE001 - already running, fine
            pass
    active.clear()


def _inject(sim: Simulator, rng: random.Random, active: list[str]) -> str:
    """Inject or clear one fault; returns a short description for the log."""
    roll = rng.random()
    state = sim.state
    if active and roll < 0.4:
        _clear(sim, active)
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
    parser.add_argument("--recovery-timeout", type=float, default=30,
                        help="seconds for up=1 and fresh last-success after faults clear")
    parser.add_argument("--pythonpath", help="a directory put first on the exporter's path")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    sim = Simulator(load_scenario(DEFAULT_SCENARIO), host="127.0.0.1", port=0,
                    username="admin", password="soak-password")  # fmt: skip
    sim.start()
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yml"
        # Every declared collector, each every 3 s (the recovery check needs them all).
        collectors = {name: {"interval": "3s"} for name in ALL_COLLECTORS}
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
            env = dict(os.environ)
            if args.pythonpath:
                env["PYTHONPATH"] = os.pathsep.join(
                    p for p in (args.pythonpath, env.get("PYTHONPATH")) if p
                )
            proc = subprocess.Popen(
                [sys.executable, "-m", "exporter.cli", f"--config.file={config}"],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
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


def _readings(text: str) -> tuple[float | None, dict[str, float]]:
    """``mailstore_spe_up`` of the soak target and last success per collector; raises
    ValueError if the body does not parse as the text exposition format."""
    up = None
    last_success: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "mailstore_spe_up" and sample.labels.get("target") == "soak":
                up = sample.value
            elif sample.name == "mailstore_spe_collector_last_success_timestamp_seconds":
                last_success[sample.labels["collector"]] = sample.value
    return up, last_success


class Recovery:
    """After faults are cleared: up must return to 1 and every collector that has
    succeeded before must succeed again (its last-success timestamp advances) within the
    timeout (one that never succeeded has no timestamp to compare)."""

    def __init__(self, since: float, timeout: float, before: dict[str, float]) -> None:
        self.deadline = since + timeout
        self.since = since
        self.before = dict(before)

    def check(self, now: float, up: float | None, last: dict[str, float]) -> str | None:
        """"ok" when recovered, "timeout: ..." when the time is up, None while waiting."""
        stale = sorted(c for c in last if last[c] <= self.before.get(c, float("-inf")))
        if up == 1 and not stale and last:
            return f"ok (up=1, {len(last)} collectors with a new success)"
        if now >= self.deadline:
            return f"timeout: up={up}, collectors without a new success: {stale or 'none seen'}"
        return None


def _run(args, rng, sim, proc, port, log_path) -> int:
    session = requests.Session()
    url = f"http://127.0.0.1:{port}/metrics"
    served = failed = invalid = 0
    recoveries = failed_recoveries = 0
    slowest = 0.0
    active: list[str] = []
    baseline: dict[str, float] | None = None
    up: float | None = None
    last_success: dict[str, float] = {}
    recovery: Recovery | None = None
    started = time.monotonic()
    next_fault = started + args.warmup
    final_clear = False
    while True:
        now = time.monotonic()
        if now - started >= args.duration and not final_clear:
            # The end: clear everything once more and require a recovery before stopping.
            _clear(sim, active)
            final_clear = True
            recovery = Recovery(now, args.recovery_timeout, last_success)
            print(f"{now - started:6.0f}s final clear: waiting for recovery", flush=True)
        tick = time.monotonic()
        try:
            response = session.get(url, timeout=5)
            if response.status_code == 200:
                try:
                    up, fresh = _readings(response.text)
                    last_success.update(fresh)
                    served += 1
                except ValueError as exc:
                    invalid += 1
                    print(f"scrape does not parse: {exc}", flush=True)
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
        if recovery is not None:
            verdict = recovery.check(time.monotonic(), up, last_success)
            if verdict is not None:
                recoveries += 1
                took = time.monotonic() - recovery.since
                if not verdict.startswith("ok"):
                    failed_recoveries += 1
                print(f"{time.monotonic() - started:6.0f}s recovery after {took:.0f} s: "
                      f"{verdict}", flush=True)  # fmt: skip
                recovery = None
                next_fault = max(next_fault, time.monotonic() + args.fault_every)
                if final_clear:
                    break
        elif not final_clear and time.monotonic() >= next_fault:
            description = _inject(sim, rng, active)
            print(f"{time.monotonic() - started:6.0f}s fault: {description}", flush=True)
            if description == "cleared all faults":
                recovery = Recovery(time.monotonic(), args.recovery_timeout, last_success)
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
    print(f"scrapes served: {served}, failed scrapes: {failed}, scrapes that do not parse: "
          f"{invalid}, slowest scrape: {slowest:.3f} s")
    print(f"recoveries after clearing faults: {recoveries}, failed: {failed_recoveries}")
    print(f"exporter log lines (warning and above): {log_lines}")
    ok = (
        failed == 0 and invalid == 0 and end is not None
        and recoveries > 0 and failed_recoveries == 0
    )  # fmt: skip
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
