"""The command line: --config.check, demo mode, clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import requests

from .helpers import metric_values

EXPORTER = [sys.executable, "-m", "exporter.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_config_check_accepts_the_example(tmp_path):
    env = {**os.environ, "SPE_PASSWORD": "secret"}
    proc = subprocess.run(
        [*EXPORTER, "--config.check", "--config.file", "config.example.yml"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("config OK: 1 target (spe1)")


def test_config_check_rejects_a_bad_file_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "targets:\n  spe1:\n    url: https://spe:8474\n    username: u\n"
        "    password: p\n    tls: {ca_file: /nonexistent/ca.pem}\n"
    )
    bad.chmod(0o600)
    proc = subprocess.run(
        [*EXPORTER, "--config.check", "--config.file", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "targets.spe1.tls.ca_file: file not found" in proc.stderr


def test_demo_mode_serves_simulator_metrics_and_stops_on_sigterm():
    port = _free_port()
    proc = subprocess.Popen(
        [*EXPORTER, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        values: dict = {}
        while time.monotonic() < deadline:
            try:
                body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                values = metric_values(body)
                if values.get(("mailstore_spe_up", (("target", "simulator"),))) == 1 and any(
                    name == "mailstore_spe_store_size_bytes" for name, _ in values
                ):
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        assert values.get(("mailstore_spe_up", (("target", "simulator"),))) == 1
        assert requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).status_code == 200
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 5
        assert "Demo mode" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
