"""Config reload: SIGHUP and POST /-/reload; an invalid config keeps the old one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests
import yaml

from exporter.app import Exporter
from exporter.config import load_config

from .helpers import k, metric_values, scrape


def _write(path, sim, **target_overrides):
    target = {
        "url": sim.url,
        "username": "admin",
        "password": "admin-password",
        "tls": {"ca_file": str(sim.ca_file)},
    }
    target.update(target_overrides)
    path.write_text(yaml.safe_dump({"web": {"listen_address": "127.0.0.1:0"},
                                    "targets": {"spe1": target}}))
    path.chmod(0o600)


def test_reload_applies_a_valid_config_and_keeps_the_old_one_otherwise(tmp_path, simulator):
    config_file = tmp_path / "config.yml"
    _write(config_file, simulator)
    exp = Exporter(load_config(config_file), clock=simulator.state.now,
                   config_loader=lambda: load_config(config_file))
    exp.start(schedule=False)
    try:
        exp.poller.run_all_once()
        v = metric_values(scrape(exp))
        assert v[("mailstore_spe_config_last_reload_successful", ())] == 1
        assert ("mailstore_spe_store_messages",
                k(target="spe1", instance_id="acme", store_id="1", store_name="2023")) in v

        config_file.write_text("targets: [not, a, mapping]\n")
        ok, message = exp.reload()
        assert not ok and "targets" in message
        v = metric_values(scrape(exp))
        assert v[("mailstore_spe_config_last_reload_successful", ())] == 0
        # the old config keeps running: its data is still served and it still polls
        exp.poller.run_collector("spe1", "service")
        assert metric_values(scrape(exp))[("mailstore_spe_up", k(target="spe1"))] == 1

        _write(config_file, simulator, collectors={"stores": {"enabled": False}})
        ok, _ = exp.reload()
        assert ok
        exp.poller.run_all_once()
        v = metric_values(scrape(exp))
        assert v[("mailstore_spe_config_last_reload_successful", ())] == 1
        assert not [key for key in v if key[0] == "mailstore_spe_store_messages"]
        assert ("mailstore_spe_instance_messages", k(target="spe1", instance_id="acme")) in v
        # API call counters of a kept target survive the reload
        requests_total = v[("mailstore_spe_api_requests_total",
                            k(target="spe1", function="GetServiceStatus"))]
        assert requests_total >= 3
    finally:
        exp.stop()


def test_sighup_and_lifecycle_endpoint_in_the_real_process(tmp_path, simulator):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config_file = tmp_path / "config.yml"
    _write(config_file, simulator)
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", f"--config.file={config_file}",
         f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ},
    )
    base = f"http://127.0.0.1:{port}"

    def reload_metric():
        body = requests.get(base + "/metrics", timeout=2).text
        return metric_values(body).get(("mailstore_spe_config_last_reload_successful", ()))

    def wait_for(value, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if reload_metric() == value:
                    return True
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        return False

    try:
        assert wait_for(1)
        config_file.write_text("targets: {spe1: {url: 'ftp://x'}}\n")
        proc.send_signal(signal.SIGHUP)
        assert wait_for(0)
        assert proc.poll() is None  # still running on the old config
        _write(config_file, simulator)
        r = requests.post(base + "/-/reload", timeout=10)
        assert r.status_code == 200 and "config reloaded" in r.text
        assert reload_metric() == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert "config reload failed" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_exits_promptly_with_a_hanging_spe_call_in_flight(tmp_path, simulator):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config_file = tmp_path / "config.yml"
    # every call hangs far longer than the grace time; the read timeout is longer still
    _write(config_file, simulator, timeouts={"read": "60s"})
    simulator.state.set_fault("*", "hang", seconds=30)
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", f"--config.file={config_file}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        time.sleep(1.0)  # the first runs are now waiting on the hanging simulator
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        simulator.state.clear_faults()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_reloads_under_slow_spe_are_cheap_and_leak_free(tmp_path, simulator):
    """Issue 13 B2: a SIGHUP storm (unchanged config) while SPE is slow neither leaks
    threads and fds nor re-polls every collector; a changed target gets a new runtime,
    an unchanged one keeps its own; POST /-/reload is rate-limited."""
    import threading

    config_file = tmp_path / "config.yml"
    _write(config_file, simulator, timeouts={"read": "10s"})
    simulator.state.scenario.latency["*"] = 0.5
    exp = Exporter(load_config(config_file), clock=simulator.state.now,
                   config_loader=lambda: load_config(config_file), enable_lifecycle=True)
    exp.start()
    try:
        time.sleep(3)  # the first polls are under way (slowly)
        runtime = exp.poller.targets["spe1"]
        threads, fds = threading.active_count(), _fds()
        before = sum(v for v in _api_calls(exp))
        for _ in range(100):
            ok, message = exp.reload()
            assert ok
        time.sleep(1)
        assert threading.active_count() <= threads + 1, (threads, threading.active_count())
        assert _fds() <= fds + 2
        # no re-poll of every collector per reload (every collector x 100 reloads otherwise)
        assert sum(_api_calls(exp)) - before < 40
        assert exp.poller.targets["spe1"] is runtime  # same client, pool, schedule
        assert message.endswith("0 changed"), message

        url = f"http://127.0.0.1:{exp.web.address[1]}/-/reload"
        statuses = [requests.post(url, timeout=30).status_code for _ in range(3)]
        assert statuses[0] == 200 and statuses[1:] == [429, 429]

        # a changed target is rebuilt, an added one is new, the unchanged one is kept
        cfg = yaml.safe_load(config_file.read_text())
        cfg["targets"]["spe2"] = dict(cfg["targets"]["spe1"])
        config_file.write_text(yaml.safe_dump(cfg))
        ok, message = exp.reload()
        assert ok and message.endswith("1 changed"), message
        assert exp.poller.targets["spe1"] is runtime
        cfg["targets"]["spe1"]["concurrency"] = 3
        config_file.write_text(yaml.safe_dump(cfg))
        ok, _ = exp.reload()
        assert ok and exp.poller.targets["spe1"] is not runtime
    finally:
        simulator.state.scenario.latency.pop("*", None)
        exp.stop()


def _api_calls(exp):
    text = requests.get(f"http://127.0.0.1:{exp.web.address[1]}/metrics", timeout=30).text
    return [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("mailstore_spe_api_requests_total{")
    ]
