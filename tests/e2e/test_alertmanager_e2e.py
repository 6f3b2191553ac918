"""End to end with a real Alertmanager: which notifications reach an on-call receiver.

One stack on loopback: three simulated SPE servers (one per kind of fault that takes the
whole target down), the exporter polling them every second, a real Prometheus evaluating
the shipped rules, a real Alertmanager with the shipped deploy/alertmanager.yml (routes and
inhibit_rules as shipped; its receivers point at a webhook inside this test, and its group
timers are short) and that webhook receiver.

The rules are the shipped expressions with every `for:` divided by 60 (5 min -> 5 s), so a
fault notifies within seconds; the delays printed are therefore for these short timers and
1 s intervals, not the shipped ones (those are in the README's alert table).

The faults, injected together:
* credential rotation (target ``cred``) and certificate change (target ``tls``);
* on target ``data``: a stopped instance, a store error, failing profile runs and service
  provider access switched off; then SPE down for longer than the data age.
Asserted: which alerts reach the receiver, that the data alerts do not resolve through the
outage, that Unreachable inhibits them while it lasts, that provider access off raises
nothing; the delay from injection to notification is printed for each.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter.app import Exporter
from exporter.collectors import ALL_COLLECTORS
from exporter.config import parse_config
from exporter.simulator import DEFAULT_SCENARIO, Simulator, load_scenario

from .conftest import REPO, RULES, free_port, stop_process

pytestmark = pytest.mark.e2e

AM_CONFIG = REPO / "deploy" / "alertmanager.yml"
JOB = "mailstore-spe-am"
FOR_DIVISOR = 60
TIMEOUT = 90.0
# Alerts about SPE data: they must not resolve through an outage.
DATA_ALERTS = {
    ("MailStoreSPEInstanceNotRunning", (("instance_id", "acme"),)),
    ("MailStoreSPEInstanceStartStopError", (("instance_id", "acme"),)),
    ("MailStoreSPEStoreError", (("instance_id", "globex"), ("store_id", "1"))),
    ("MailStoreSPEProfileFailed", (("instance_id", "hooli"), ("profile_id", "3"))),
}


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    total = 0.0
    for number, unit in re.findall(r"(\d+)(ms|s|m|h|d)", duration):
        total += int(number) * units[unit]
    return total


def scaled_rules(src: Path, dst: Path) -> None:
    """The shipped rules with every `for:` divided by FOR_DIVISOR; expressions unchanged."""
    doc = yaml.safe_load(src.read_text(encoding="utf-8"))
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{max(1, round(_seconds(rule['for']) / FOR_DIVISOR))}s"
    dst.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def test_scaled_rules_divide_only_the_for_durations(tmp_path: Path) -> None:
    scaled_rules(RULES, tmp_path / "r.yml")
    shipped = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    scaled = yaml.safe_load((tmp_path / "r.yml").read_text(encoding="utf-8"))
    pairs = [
        (a, b)
        for ga, gb in zip(shipped["groups"], scaled["groups"], strict=True)
        for a, b in zip(ga["rules"], gb["rules"], strict=True)
    ]
    for a, b in pairs:
        assert {k: v for k, v in a.items() if k != "for"} == {
            k: v for k, v in b.items() if k != "for"
        }
    fors = {a["alert"]: b.get("for") for a, b in pairs if "for" in a}
    assert fors["MailStoreSPEUnreachable"] == "5s" and fors["MailStoreSPEStoreError"] == "10s"


def alertmanager_config(src: Path, webhook: str) -> dict:
    """The shipped config: routes and inhibit_rules as they are; receivers -> the webhook,
    group timers short."""
    doc = yaml.safe_load(src.read_text(encoding="utf-8"))
    route = doc["route"]
    route.update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    for sub in route.get("routes", []):
        sub.pop("repeat_interval", None)
    for receiver in doc["receivers"]:
        if receiver["name"] != "null":
            receiver["webhook_configs"] = [
                {"url": f"{webhook}/{receiver['name']}", "send_resolved": True}
            ]
    return doc


@dataclass
class Notification:
    at: float  # time.monotonic() when received
    receiver: str
    status: str  # of the alert
    labels: dict[str, str]


@dataclass
class Receiver:
    notifications: list[Notification] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, path: str, body: dict) -> None:
        now = time.monotonic()
        with self.lock:
            for alert in body.get("alerts", []):
                self.notifications.append(
                    Notification(now, path.strip("/"), alert["status"], alert["labels"])
                )

    def find(self, name: str, status: str = "firing", **labels: str) -> list[Notification]:
        with self.lock:
            return [
                n for n in self.notifications
                if n.labels.get("alertname") == name and n.status == status
                and all(n.labels.get(k) == v for k, v in labels.items())
            ]


def _serve_receiver(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            receiver.record(self.path, json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class AMStack:
    sims: dict[str, Simulator]
    exporter: Exporter
    prom_url: str
    am_url: str
    receiver: Receiver
    procs: list[subprocess.Popen]
    logs: list[Path]
    session: requests.Session

    def tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:])
            for p in self.logs
        )

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    pytest.fail(f"{proc.args[0]} exited while waiting for {what}:\n{self.tail()}")
            try:
                last = check()
            except (requests.RequestException, ValueError, KeyError) as exc:
                last = exc
            else:
                if last:
                    return last
            time.sleep(0.25)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})\n"
                    f"{self.tail()}", pytrace=False)

    def query(self, expr: str) -> list[dict]:
        body = self.session.get(f"{self.prom_url}/api/v1/query", params={"query": expr},
                                timeout=5).json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def firing(self, name: str, **labels: str) -> list[dict]:
        sel = ", ".join(f'{k}="{v}"' for k, v in {"alertname": name, **labels}.items())
        return self.query(f'ALERTS{{{sel}, alertstate="firing"}}')

    def am_alerts(self, name: str, **labels: str) -> list[dict]:
        alerts = self.session.get(f"{self.am_url}/api/v2/alerts", timeout=5).json()
        return [
            a for a in alerts
            if a["labels"].get("alertname") == name
            and all(a["labels"].get(k) == v for k, v in labels.items())
        ]


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def am_stack(
    prometheus_binary: str, alertmanager_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AMStack]:
    tmp = tmp_path_factory.mktemp("am-e2e")
    sims = {}
    for name in ("cred", "tls", "data"):
        sims[name] = Simulator(load_scenario(DEFAULT_SCENARIO), host="127.0.0.1", port=0,
                               username="admin", password="admin-password").start()
    # The exporter trusts a copy of each certificate (the simulator deletes its own on stop).
    for name, sim in sims.items():
        (tmp / f"{name}-ca.pem").write_bytes(Path(sim.ca_file).read_bytes())
    config = parse_config({
        "web": {"listen_address": "127.0.0.1:0"},
        "targets": {
            name: {
                "url": sim.url,
                "username": "admin",
                "password": "admin-password",
                "tls": {"ca_file": str(tmp / f"{name}-ca.pem")},
                "timeouts": {"connect": "1s", "read": "3s", "async_deadline": "5s"},
                # 1 s intervals: max_data_age (auto) is 3 s.
                "collectors": {c: {"interval": "1s"} for c in ALL_COLLECTORS},
            }
            for name, sim in sims.items()
        },
    })
    exporter = Exporter(config)
    exporter.start()
    assert exporter.web is not None
    receiver = Receiver()
    hook = _serve_receiver(receiver)
    am_port, prom_port = free_port(), free_port()
    (tmp / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config(
        AM_CONFIG, f"http://127.0.0.1:{hook.server_address[1]}")), encoding="utf-8")
    scaled_rules(RULES, tmp / "rules.yml")
    (tmp / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp / "rules.yml")],
        "alerting": {"alertmanagers": [
            {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [{"job_name": JOB, "static_configs": [
            {"targets": [f"127.0.0.1:{exporter.web.address[1]}"]}]}],
    }), encoding="utf-8")
    logs = [tmp / "alertmanager.log", tmp / "prometheus.log"]
    procs = [
        _start([alertmanager_binary, f"--config.file={tmp / 'alertmanager.yml'}",
                f"--storage.path={tmp / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address="], logs[0]),
        _start([prometheus_binary, f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}"], logs[1]),
    ]
    session = requests.Session()
    session.trust_env = False
    st = AMStack(sims, exporter, f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}",
                 receiver, procs, logs, session)
    try:
        st.wait_for("Alertmanager ready", lambda: session.get(
            f"{st.am_url}/-/ready", timeout=2).status_code == 200, timeout=30)
        st.wait_for("every target up in Prometheus", lambda: len(st.query(
            f'mailstore_spe_up{{job="{JOB}"}} == 1')) == 3, timeout=30)
        yield st
    finally:
        for proc in procs:
            stop_process(proc)
        session.close()
        hook.shutdown()
        exporter.stop()
        for sim in st.sims.values():
            sim.stop()


def _restart_with_new_certificate(sim: Simulator) -> Simulator:
    """The management server's certificate changes: same address, a new self-signed one."""
    port = sim.port
    sim.stop()
    new = Simulator(load_scenario(DEFAULT_SCENARIO), host="127.0.0.1", port=port,
                    username="admin", password="admin-password")
    return new.start()


def test_faults_reach_the_receiver_and_outages_resolve_nothing(am_stack: AMStack) -> None:
    st = am_stack
    rx = st.receiver
    data = st.sims["data"]
    # Let the scenario's own problems notify first, so the faults below stand out.
    st.wait_for("the scenario's store error notified", lambda: rx.find(
        "MailStoreSPEStoreError", target="data", instance_id="hooli"))

    injected: dict[str, float] = {}
    st.sims["cred"].state.set_credentials("admin", "rotated-password")
    injected["credential rotation"] = time.monotonic()
    st.sims["tls"] = _restart_with_new_certificate(st.sims["tls"])
    injected["certificate change"] = time.monotonic()
    data.state.stop_instance("acme", error="e2e: stopped by the test")
    injected["stopped instance"] = time.monotonic()
    data.state.set_store_flags("globex", 1, error="e2e: the database file could not be opened")
    injected["store error"] = time.monotonic()
    with data.state.lock:
        profile = next(p for p in data.state.instance("hooli").spec.profiles if p.id == 3)
        profile.interval_minutes, profile.offset_minutes = 1, 0
        profile.duration_seconds, profile.results = 1, ["failed"]
    injected["failed profile run"] = time.monotonic()
    data.state.set_service_provider_access("globex", False)
    injected["provider access off"] = time.monotonic()

    expected = [
        ("credential rotation", "MailStoreSPEAPIAuthenticationFailing",
         {"target": "cred", "reason": "http_401"}, "pager"),
        ("credential rotation", "MailStoreSPEUnreachable", {"target": "cred"}, "pager"),
        ("certificate change", "MailStoreSPEAPITLSFailing", {"target": "tls"}, "pager"),
        ("certificate change", "MailStoreSPEUnreachable", {"target": "tls"}, "pager"),
        ("stopped instance", "MailStoreSPEInstanceNotRunning",
         {"target": "data", "instance_id": "acme"}, "pager"),
        ("stopped instance", "MailStoreSPEInstanceStartStopError",
         {"target": "data", "instance_id": "acme"}, "pager"),
        ("store error", "MailStoreSPEStoreError",
         {"target": "data", "instance_id": "globex", "store_id": "1"}, "pager"),
        ("failed profile run", "MailStoreSPEProfileFailed",
         {"target": "data", "instance_id": "hooli", "profile_id": "3"}, "tickets"),
    ]
    delays = []
    for fault, name, labels, route in expected:
        first = st.wait_for(f"{name} {labels} notified", lambda n=name, lb=labels: rx.find(n, **lb))
        assert {n.receiver for n in first} == {route}, (name, first)
        delays.append((fault, name, first[0].at - injected[fault]))

    # Provider access off is a normal tenant state: nothing about it reaches the receiver.
    quiet = ("MailStoreSPEInstanceCollectFailing", "MailStoreSPECollectorFailing",
             "MailStoreSPEDataStale")
    for name in quiet:
        assert rx.find(name, target="data") == [], name
    assert st.query('mailstore_spe_instance_service_provider_access_enabled'
                    '{target="data", instance_id="globex"} == 0')

    # SPE down for target "data", longer than the data age (3 s): the data alerts keep
    # firing in Prometheus, Alertmanager inhibits them under Unreachable, nothing resolves.
    data.state.set_fault("*", "drop_connection")
    down = time.monotonic()
    try:
        st.wait_for("Unreachable for data notified",
                    lambda: rx.find("MailStoreSPEUnreachable", target="data"))
        delays.append(("SPE down", "MailStoreSPEUnreachable",
                       rx.find("MailStoreSPEUnreachable", target="data")[0].at - down))
        st.wait_for("the store data expired (max_data_age)", lambda: not st.query(
            'mailstore_spe_store_error{target="data"}'))
        for name, labels in DATA_ALERTS:
            lb = dict(labels, target="data")
            assert st.firing(name, **lb), f"{name} {lb} stopped firing during the outage"
            inhibited = st.wait_for(f"{name} inhibited", lambda n=name, lb=lb: [
                a for a in st.am_alerts(n, **lb) if a["status"]["inhibitedBy"]])
            assert inhibited[0]["status"]["state"] == "suppressed"
        # Hold the outage well beyond the data age.
        time.sleep(max(0.0, down + 15 - time.monotonic()))
        for name, labels in DATA_ALERTS:
            assert st.firing(name, **dict(labels, target="data")), name
    finally:
        data.state.clear_faults()
    outage = time.monotonic() - down
    st.wait_for("data reachable again", lambda: st.query(
        'mailstore_spe_up{target="data"} == 1'))
    st.wait_for("Unreachable for data resolved", lambda: rx.find(
        "MailStoreSPEUnreachable", status="resolved", target="data"))
    time.sleep(3)  # a few evaluations and notification rounds after the recovery
    for name, labels in DATA_ALERTS:
        lb = dict(labels, target="data")
        assert st.firing(name, **lb), f"{name} {lb} no longer firing after the outage"
        # Never resolved, so never fired anew either.
        assert rx.find(name, status="resolved", **lb) == [], f"{name} {lb} resolved falsely"
        assert not [a for a in st.am_alerts(name, **lb) if a["status"]["inhibitedBy"]]

    report = [f"outage of target data: {outage:.1f} s (data age 3 s); for: durations / "
              f"{FOR_DIVISOR}, intervals 1 s, group_wait 1 s"]
    report += [f"{fault:20s} -> {name:40s} {delay:5.1f} s" for fault, name, delay in delays]
    print("\ndelay from injection to notification:\n  " + "\n  ".join(report))
