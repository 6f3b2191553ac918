"""Issue 13's attacks B1, B2, B5, B6, re-runnable, against any checkout of the exporter.

    .venv/bin/python benchmarks/attacks.py --tree /tmp/harden-before b1 b2 b5 b6
    .venv/bin/python benchmarks/attacks.py --tree . b1 b2 b5 b6

Each attack starts the exporter of ``--tree`` as its own process (``python -m
exporter.cli``) on loopback, attacks it for a bounded time with a bounded number of
connections, and prints the exporter's peak RSS (VmHWM), threads and open fds before and
after, the CPU it used during the attack, and the latency of a normal scrape (probe)
during the attack. Loopback only; every attack stops after ``--seconds``.

* b1: 10 clients each send up to 98 headers of 65,000 bytes to /metrics.
* b2: 10 config reloads (SIGHUP) 1 s apart, then 30 ``POST /-/reload``, while SPE (the
  simulator) answers every call after 1 s; threads/fds are read 10 s after the last one.
* b5: 1,100 connections under ``ulimit -n 1024``, 30 of them slowloris (a header line
  every 2 s).
* b6: 50 clients sending wrong passwords (bcrypt cost 12) while a valid client scrapes.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import bcrypt
from _common import PASSWORD, USERNAME, banner, start_simulator

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exporter:
    """The exporter of one checkout as a child process, with /proc readings."""

    def __init__(self, tree: Path, config: str, *, web_config: str | None = None,
                 nofile: int | None = None, lifecycle: bool = False) -> None:
        folder = Path(tempfile.mkdtemp(prefix="attack-"))
        (folder / "config.yml").write_text(config)
        self.port = int(config.split("127.0.0.1:", 1)[1].split("'", 1)[0])
        args = [sys.executable, "-m", "exporter.cli", f"--config.file={folder / 'config.yml'}"]
        if web_config:
            (folder / "web.yml").write_text(web_config)
            args.append(f"--web.config.file={folder / 'web.yml'}")
        if lifecycle:
            args.append("--web.enable-lifecycle")

        def limits() -> None:
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        env = dict(os.environ, PYTHONPATH=str(tree))
        self.log = open(folder / "stderr.log", "w+")
        self.proc = subprocess.Popen(args, cwd=tree, env=env, stdout=subprocess.DEVNULL,
                                     stderr=self.log, preexec_fn=limits)
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            time.sleep(0.1)
        raise SystemExit("exporter did not start")

    def status(self) -> dict[str, int]:
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "Threads"):
                fields[key] = int(value.split()[0])
        fields["fds"] = len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        return fields

    def cpu(self) -> float:
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

    def tracebacks(self) -> int:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace").count("Traceback")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def probe(port: int, headers: dict[str, str] | None = None, timeout: float = 10) -> float:
    """Seconds for one normal /metrics scrape (timeout counts as ``timeout``)."""
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", "/metrics", headers=headers or {})
        conn.getresponse().read()
        conn.close()
    except OSError:
        return timeout
    return time.perf_counter() - started


class Probes:
    """A normal scraper, once every 0.5 s, while the attack runs."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(port, headers), daemon=True)
        self._thread.start()

    def _run(self, port: int, headers: dict[str, str] | None) -> None:
        while not self._stop.wait(0.5):
            self.times.append(probe(port, headers))

    def stop(self) -> str:
        self._stop.set()
        self._thread.join()
        t = sorted(self.times) or [0.0]
        return (f"probe n={len(t)} p50={statistics.median(t) * 1000:.1f} ms "
                f"max={t[-1] * 1000:.1f} ms")


def report(name: str, exp: Exporter, before: dict[str, int], cpu0: float, probes: str,
           extra: str = "") -> None:
    after = exp.status()
    print(f"{name}: peak RSS {before['VmHWM'] / 1024:.1f} -> {after['VmHWM'] / 1024:.1f} MB; "
          f"threads {before['Threads']} -> {after['Threads']}; fds {before['fds']} -> "
          f"{after['fds']}; CPU {exp.cpu() - cpu0:.2f} s; {probes}; "
          f"tracebacks {exp.tracebacks()}{extra}", flush=True)


def unreachable_config(port: int) -> str:
    return (f"web: {{listen_address: '127.0.0.1:{port}'}}\n"
            "targets: {spe1: {url: 'https://127.0.0.1:1', username: u, password: p}}\n")


def attack_b1(tree: Path, seconds: float) -> None:
    exp = Exporter(tree, unreachable_config(free_port()))
    time.sleep(1)
    before, cpu0 = exp.status(), exp.cpu()
    probes = Probes(exp.port)
    stop = time.monotonic() + seconds

    attempts = [0]

    def client() -> None:
        # Reconnects until the time is up: a server that refuses early gets more attempts.
        header = b"X-Pad: " + b"a" * 64991 + b"\r\n"
        while time.monotonic() < stop:
            attempts[0] += 1
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", exp.port), timeout=5
            ) as sock:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                for _ in range(98):
                    sock.sendall(header)
                sock.sendall(b"\r\n")
                sock.recv(100)
                time.sleep(max(0.0, min(1.0, stop - time.monotonic())))

    threads = [threading.Thread(target=client) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report("b1", exp, before, cpu0, probes.stop(), f"; attempts {attempts[0]}")
    exp.stop()


def attack_b2(tree: Path, seconds: float) -> None:
    sim = start_simulator(5, latency=1.0)
    port = free_port()
    config = (f"web: {{listen_address: '127.0.0.1:{port}'}}\n"
              f"targets: {{spe1: {{url: '{sim.url}', username: {USERNAME}, "
              f"password: {PASSWORD}, tls: {{ca_file: '{sim.ca_file}'}}, "
              "timeouts: {connect: 5s, read: 10s}}}\n")
    exp = Exporter(tree, config, lifecycle=True)
    time.sleep(5)
    before, cpu0 = exp.status(), exp.cpu()
    calls0 = _api_calls(exp.port)
    probes = Probes(exp.port)
    for _ in range(10):
        exp.proc.send_signal(signal.SIGHUP)
        time.sleep(1)
    codes: dict[int, int] = {}
    for _ in range(30):
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", exp.port, timeout=10)
            conn.request("POST", "/-/reload")
            status = conn.getresponse().status
            codes[status] = codes.get(status, 0) + 1
            conn.close()
    time.sleep(10)
    report("b2", exp, before, cpu0, probes.stop(),
           f"; SPE calls {_api_calls(exp.port) - calls0:.0f}; POST /-/reload answers {codes}")
    exp.stop()
    sim.stop()


def _api_calls(port: int) -> float:
    """SPE calls the exporter made so far (its own mailstore_spe_api_requests_total)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("mailstore_spe_api_requests_total{"))


def attack_b5(tree: Path, seconds: float) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    exp = Exporter(tree, unreachable_config(free_port()), nofile=1024)
    time.sleep(1)
    before, cpu0 = exp.status(), exp.cpu()
    probes = Probes(exp.port)
    socks = []
    for _ in range(1070):
        with contextlib.suppress(OSError):
            socks.append(socket.create_connection(("127.0.0.1", exp.port), timeout=2))
    slow = []
    for _ in range(30):
        with contextlib.suppress(OSError):
            s = socket.create_connection(("127.0.0.1", exp.port), timeout=2)
            s.sendall(b"GET /metrics HTTP/1.1\r\n")
            slow.append(s)
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        for s in slow:
            with contextlib.suppress(OSError):
                s.sendall(b"X-A: b\r\n")
        time.sleep(2)
    during = exp.status()
    for s in socks + slow:
        s.close()
    time.sleep(2)
    report("b5", exp, before, cpu0, probes.stop(),
           f"; during: threads {during['Threads']}, fds {during['fds']}")
    exp.stop()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def attack_b6(tree: Path, seconds: float) -> None:
    hashed = bcrypt.hashpw(b"scrape-secret", bcrypt.gensalt(12)).decode()
    exp = Exporter(tree, unreachable_config(free_port()),
                   web_config=f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    good = {"Authorization": "Basic " + base64.b64encode(b"prometheus:scrape-secret").decode()}

    def timed(user: str) -> float:
        token = base64.b64encode(f"{user}:wrong".encode()).decode()
        return probe(exp.port, {"Authorization": f"Basic {token}"})

    known = statistics.median(timed("prometheus") for _ in range(5))
    unknown = statistics.median(timed("mallory") for _ in range(5))
    probe(exp.port, good)  # the valid credentials are verified (and cached) once
    idle = statistics.median(probe(exp.port, good) for _ in range(5))
    before, cpu0 = exp.status(), exp.cpu()
    probes = Probes(exp.port, good)
    stop = time.monotonic() + seconds
    answers: dict[int, int] = {}

    def attacker(n: int) -> None:
        bad = {"Authorization": "Basic " + base64.b64encode(f"prometheus:x{n}".encode()).decode()}
        while time.monotonic() < stop:
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", exp.port, timeout=30)
                conn.request("GET", "/metrics", headers=bad)
                status = conn.getresponse().status
                answers[status] = answers.get(status, 0) + 1
                conn.close()

    threads = [threading.Thread(target=attacker, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report("b6", exp, before, cpu0, probes.stop(),
           f"; wrong password: known user {known * 1000:.1f} ms, unknown user "
           f"{unknown * 1000:.1f} ms; valid scrape idle {idle * 1000:.1f} ms; "
           f"flood answers {answers}")
    exp.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, default=HERE.parent)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("attacks", nargs="+", choices=["b1", "b2", "b5", "b6"])
    args = parser.parse_args()
    banner("attacks")
    print(f"tree: {args.tree.resolve()} ({subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=args.tree, capture_output=True, text=True).stdout.strip()})")  # noqa: E501
    for name in args.attacks:
        globals()[f"attack_{name}"](args.tree.resolve(), args.seconds)


if __name__ == "__main__":
    main()
