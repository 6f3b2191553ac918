"""The whole stack on loopback: SPE simulator -> exporter -> a real Prometheus (Debian's).

One stack per session: Prometheus scrapes for the first time 5-6 s after it starts, even
with a 1 s scrape interval (its discovery manager pushes targets every 5 s). The simulator
runs the default scenario with a live clock (a frozen clock would freeze the exporter's
timestamps and make the staleness alerts fire); the exporter polls every collector every
second so rates and alerts have data within seconds; Prometheus scrapes and evaluates the
shipped alert rules every second.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.config.schema import COLLECTOR_DEFAULTS
from exporter.simulator import Simulator

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "alerts" / "mailstore-spe.rules.yml"
# Contains "mailstore" so that MailStoreSPEExporterDown's job=~".*mailstore.*" selects it.
JOB = "mailstore-spe-e2e"
# A second scrape job whose target refuses connections: MailStoreSPEExporterDown must fire
# for it (and not for JOB).
DOWN_JOB = "mailstore-spe-e2e-unreachable"
TARGET = "simulator"
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def fast_rules(src: Path, dst: Path) -> None:
    """Copy of the shipped rules with every `for:` set to 0s.

    The shipped durations (5 min to 1 h) cannot elapse within a test that must finish in
    under a minute. Here we prove that the expressions match what the real exporter exposes
    and fire on the faults they describe; the `for:` durations themselves are covered by
    `promtool test rules` in tests/alerts.
    """
    doc = yaml.safe_load(src.read_text(encoding="utf-8"))
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = "0s"
    dst.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


@dataclass
class Stack:
    sim: Simulator
    exporter: Exporter
    prom_url: str
    prom_proc: subprocess.Popen
    prom_log: Path
    session: requests.Session

    def log_tail(self, lines: int = 30) -> str:
        text = self.prom_log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def api(self, path: str, **params: str) -> Any:
        response = self.session.get(f"{self.prom_url}/api/v1/{path}", params=params, timeout=5)
        body = response.json()
        assert body.get("status") == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """Instant query; the result vector (a scalar comes back as one unlabelled sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def values(self, expr: str, by: str) -> dict[str, float]:
        return {r["metric"].get(by, ""): float(r["value"][1]) for r in self.query(expr)}

    def wait_for(
        self, what: str, check: Callable[[], Any], timeout: float = 15.0, every: float = 0.25
    ) -> Any:
        """Poll ``check`` until it returns something truthy; fail with Prometheus's log tail."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.prom_proc.poll() is not None:
                pytest.fail(
                    f"prometheus exited with {self.prom_proc.returncode} while waiting for "
                    f"{what}; log tail:\n{self.log_tail()}",
                    pytrace=False,
                )
            try:
                last = check()
            except (requests.RequestException, ValueError) as exc:
                last = exc
            else:
                if last:
                    return last
            time.sleep(every)
        pytest.fail(
            f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r}); "
            f"prometheus log tail:\n{self.log_tail()}",
            pytrace=False,
        )

    def settle(self, remaining: Callable[[], list], timeout: float = 10.0) -> list:
        """Poll ``remaining`` until it returns an empty list or ``timeout`` passes; return
        its last value, for the caller to assert on (so a failure lists what is missing)."""
        deadline = time.monotonic() + timeout
        left = remaining()
        while left and time.monotonic() < deadline:
            time.sleep(0.5)
            left = remaining()
        return left

    def active_alerts(self, name: str, **labels: str) -> list[dict]:
        return [
            a
            for a in self.api("alerts")["alerts"]
            if a["labels"].get("alertname") == name
            and all(a["labels"].get(k) == v for k, v in labels.items())
            and a["state"] in ("pending", "firing")
        ]


# Package scope: started once for all of tests/e2e, and stopped right after it, so that
# Prometheus and the 1 s polling do not keep loading the machine for the rest of the suite.
@pytest.fixture(scope="package")
def stack(
    prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory, new_simulator
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("e2e")
    sim = new_simulator()
    config = parse_config(
        {
            "web": {"listen_address": "127.0.0.1:0"},
            "targets": {
                TARGET: {
                    "url": sim.url,
                    "username": "admin",
                    "password": "admin-password",
                    "tls": {"ca_file": str(sim.ca_file)},
                    "timeouts": {"connect": "2s", "read": "5s", "async_deadline": "10s"},
                    "collectors": {name: {"interval": "1s"} for name in COLLECTOR_DEFAULTS},
                }
            },
        }
    )
    exporter = Exporter(config, clock=sim.state.now)
    exporter.start()
    assert exporter.web is not None
    exporter_addr = f"127.0.0.1:{exporter.web.address[1]}"
    # Bound but not listening: connections are refused and no other process can take the port.
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))
    refusing_addr = f"127.0.0.1:{refusing.getsockname()[1]}"

    rules = tmp / "rules.yml"
    fast_rules(RULES, rules)
    prom_config = tmp / "prometheus.yml"
    prom_config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "scrape_configs": [
                    {"job_name": JOB, "static_configs": [{"targets": [exporter_addr]}]},
                    {"job_name": DOWN_JOB, "static_configs": [{"targets": [refusing_addr]}]},
                ],
            }
        ),
        encoding="utf-8",
    )
    port = free_port()
    prom_log = tmp / "prometheus.log"
    log_file = prom_log.open("wb")
    proc = subprocess.Popen(
        [
            prometheus_binary,
            f"--config.file={prom_config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    session = requests.Session()
    session.trust_env = False  # loopback only: no proxy, no CA bundle from the environment
    st = Stack(sim, exporter, f"http://127.0.0.1:{port}", proc, prom_log, session)
    try:
        st.wait_for(
            "Prometheus /-/ready",
            lambda: session.get(f"{st.prom_url}/-/ready", timeout=2).status_code == 200,
            timeout=STARTUP_TIMEOUT,
        )
        st.wait_for(
            f'up{{job="{JOB}"}} == 1 (first successful scrape of the exporter)',
            lambda: st.query(f'up{{job="{JOB}"}} == 1'),
            timeout=STARTUP_TIMEOUT,
        )
        yield st
    finally:
        stop_process(proc)
        log_file.close()
        session.close()
        exporter.stop()
        sim.stop()
        refusing.close()
