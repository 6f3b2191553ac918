"""Shared helpers of the benchmark scripts (not a test module; loopback only).

The scripts run from the repository root: ``.venv/bin/python benchmarks/<name>.py``.
"""

from __future__ import annotations

import datetime
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from exporter.app import Exporter  # noqa: E402
from exporter.config import parse_config  # noqa: E402
from exporter.samples import Sample, SampleList  # noqa: E402
from exporter.simulator import Simulator, generate_scenario, load_scenario  # noqa: E402
from exporter.snapshot import RunSink  # noqa: E402

USERNAME, PASSWORD = "admin", "admin-password"
TARGET = "bench"


def machine() -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{datetime.date.today().isoformat()}; nproc={os.cpu_count()}; CPU {model}; "
        f"Python {platform.python_version()} ({platform.system()})"
    )


def banner(name: str) -> None:
    print(f"# {name}: {' '.join(sys.argv)}")
    print(f"# machine: {machine()}")


def percentiles(values: list[float]) -> tuple[float, float]:
    """(p50, p99) of a list of seconds."""
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def start_simulator(instances: int, latency: float = 0.0, seed: int = 1) -> Simulator:
    scenario = generate_scenario(instances=instances, seed=seed)
    if latency:
        scenario["latency"] = {"*": latency}
    sim = Simulator(
        load_scenario(scenario), host="127.0.0.1", port=0, username=USERNAME, password=PASSWORD
    )
    sim.start()
    return sim


def target_spec(sim_url: str, ca_file: str, **overrides: object) -> dict:
    spec: dict = {
        "url": sim_url,
        "username": USERNAME,
        "password": PASSWORD,
        "tls": {"ca_file": str(ca_file)},
        "timeouts": {"connect": "5s", "read": "60s", "async_deadline": "60s"},
    }
    spec.update(overrides)
    return spec


def exporter_for(sim: Simulator, **overrides: object) -> Exporter:
    config = parse_config(
        {
            "web": {"listen_address": "127.0.0.1:0"},
            "targets": {TARGET: target_spec(sim.url, sim.ca_file, **overrides)},
        }
    )
    return Exporter(config)


def _relabel(samples: Iterable[Sample], instance_id: str) -> list[Sample]:
    out = []
    for s in samples:
        labels = tuple(
            (name, instance_id if name == "instance_id" else value) for name, value in s.labels
        )
        out.append(Sample(s.name, labels, s.value))
    return out


def swap_samples(exp: Exporter, collector: str, samples: list[Sample], at: float) -> None:
    """Render ``samples`` and swap them into the store, as a run of ``collector`` would."""
    sink = RunSink()
    sink.put(samples)
    exp.store.swap(TARGET, collector, sink, at)


def populate_synthetic(exp: Exporter, sim: Simulator, instances: int) -> dict[str, list[Sample]]:
    """Poll ``sim`` (a small scenario) once for real, then replicate every per-instance
    sample group to ``instances`` instances and swap the result into the store, so the
    exporter holds data of the shape a real poll of that many instances produces.

    Returns collector -> the samples swapped in (for re-swapping during a "poll").
    """
    rt = exp.poller.targets[TARGET]
    results = {}
    for name in sorted(rt.plans, key=lambda n: n != "instances"):
        # As the scheduler runs it, but keeping the samples instead of rendering them.
        sink = SampleList()
        result = rt.collectors[name].collect(rt.context(sink, time.time))
        if name == "instances" and result.instances is not None:
            rt.known_instances = list(result.instances)
        results[name] = (result, sink.samples)
    swapped: dict[str, list[Sample]] = {}
    now = time.time()
    for name, (result, run_samples) in results.items():
        by_instance: dict[str, list[Sample]] = {}
        rest: list[Sample] = []
        for s in run_samples:
            iid = dict(s.labels).get("instance_id")
            if iid is None:
                rest.append(s)
            else:
                by_instance.setdefault(iid, []).append(s)
        if not by_instance:
            swapped[name] = run_samples
            swap_samples(exp, name, run_samples, now)
            exp.health.record_run(
                TARGET, name, success=result.success, duration=1.0, finished_at=now,
                error=None,
            )
            continue
        templates = [by_instance[k] for k in sorted(by_instance)]
        samples = list(rest)
        for i in range(instances):
            samples.extend(_relabel(templates[i % len(templates)], f"bench{i:05d}"))
        swapped[name] = samples
        swap_samples(exp, name, samples, now)
        if result.instance_outcomes:
            outcomes = {f"bench{i:05d}": True for i in range(instances)}
            exp.health.record_run(
                TARGET, name, success=True, duration=1.0, finished_at=now, error=None,
                instance_outcomes=outcomes,
            )
    return swapped


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


class SimulatorProcess:
    """``mailstore-spe-simulator`` in its own process (its own core and GIL)."""

    def __init__(self, instances: int, latency: float = 0.0, seed: int = 1) -> None:
        import subprocess
        import tempfile

        import yaml

        scenario = generate_scenario(instances=instances, seed=seed)
        if latency:
            scenario["latency"] = {"*": latency}
        self._dir = tempfile.TemporaryDirectory(prefix="spe-bench-")
        self.scenario_file = os.path.join(self._dir.name, "scenario.yml")
        with open(self.scenario_file, "w", encoding="utf-8") as f:
            yaml.safe_dump(scenario, f)
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "exporter.simulator", "--scenario", self.scenario_file,
                "--listen", "127.0.0.1:0", "--username", USERNAME, "--password", PASSWORD,
            ],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )
        self.url = self.ca_file = ""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if "listening on" in line:
                self.url = line.rsplit(" ", 1)[1].strip()
            elif "certificate:" in line:
                self.ca_file = line.split(":", 1)[1].strip()
                break
        if not self.url or not self.ca_file:
            self.stop()
            raise RuntimeError("the simulator did not start")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)
        self._dir.cleanup()


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of /proc/<pid>/status in MB: VmRSS (resident now) or VmHWM (the
    kernel's high-water mark of resident memory, which a 1 s sampler cannot miss)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory_map(pid: int) -> dict[str, float]:
    """Resident MB by kind of mapping, from /proc/<pid>/smaps (Linux).

    ``heap``: the main thread's malloc heap (brk). ``anon <1M``/``anon 1M``/``anon >1M``:
    anonymous mappings by size; CPython's object arenas are 1 MiB mappings (unless the
    kernel merged neighbours), glibc's per-thread malloc heaps are larger (up to 64 MiB).
    ``files``: shared libraries and other file-backed pages. ``stack``: the main stack.
    """
    kinds: dict[str, float] = {}
    size = 0
    name = ""
    with open(f"/proc/{pid}/smaps", encoding="ascii", errors="replace") as f:
        for line in f:
            head = line.split()
            if not head:
                continue
            if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
                start, end = (int(x, 16) for x in head[0].split("-"))
                size = end - start
                name = head[5] if len(head) > 5 else ""
            elif head[0] == "Rss:":
                if name == "[heap]":
                    kind = "heap"
                elif name == "[stack]":
                    kind = "stack"
                elif name.startswith("["):
                    kind = "other"
                elif name:
                    kind = "files"
                elif size < 1 << 20:
                    kind = "anon <1M"
                elif size == 1 << 20:
                    kind = "anon 1M"
                else:
                    kind = "anon >1M"
                kinds[kind] = kinds.get(kind, 0.0) + int(head[1]) / 1024
    return dict(sorted(kinds.items()))


def exporter_config(url: str, ca_file: str, **overrides: object) -> dict:
    return {
        "web": {"listen_address": "127.0.0.1:0"},
        "targets": {TARGET: target_spec(url, ca_file, **overrides)},
    }


class RawFloor:
    """Prebuilt response bytes (head + body) sent with one ``sendall`` per request on a
    ``TCP_NODELAY`` socket; requests are read only as far as their end and two headers."""

    def __init__(self, bodies: dict[tuple[bool, bool], bytes]) -> None:
        self.responses = {}
        for (om, gz), body in bodies.items():
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\n"
                + ("Content-Encoding: gzip\r\n" if gz else "") + "\r\n"
            ).encode()
            self.responses[(om, gz)] = head + body
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.server_address = self.sock.getsockname()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffered = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffered:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                request, buffered = buffered.split(b"\r\n\r\n", 1)
                om = b"openmetrics" in request
                gz = b"Accept-Encoding: gzip" in request
                conn.sendall(self.responses[(om, gz)])

    def shutdown(self) -> None:
        self.sock.close()
