"""Load (many concurrent requests) and the command-line entry point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from .conftest import SimApi, decode

REPO = Path(__file__).resolve().parents[2]


def test_500_requests_from_32_threads_all_succeed(api: SimApi) -> None:
    sim = api.sim
    functions = [
        ("GetServiceStatus", {}),
        ("GetStores", {"instanceID": "acme"}),
        ("GetInstances", {"instanceFilter": "*"}),
        ("Ping", {}),
    ]

    def one(n: int) -> str:
        client = SimApi(sim)  # its own connection pool, like separate scrapers
        try:
            name, args = functions[n % len(functions)]
            resp = client.post(f"/api/invoke/{name}", data=args, timeout=30)
            return decode(resp)["statusCode"] if resp.status_code == 200 else str(resp.status_code)
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=32) as pool:
        outcomes = list(pool.map(one, range(500)))
    assert outcomes == ["succeeded"] * 500


def test_cli_serves_and_exits_cleanly_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter.simulator",
            "--listen",
            "127.0.0.1:0",
            "--password",
            "cli-secret",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening on https://127.0.0.1:" in first, first + (proc.stderr.read() or "")
        url = first.rsplit(" ", 1)[1].strip()
        lines = [proc.stdout.readline() for _ in range(3)]
        ca_file = lines[1].split(": ", 1)[1].strip()
        thumbprint = lines[2].split(": ", 1)[1].strip()
        assert len(thumbprint) == 40
        resp = requests.post(
            url + "/api/invoke/Ping", auth=("admin", "cli-secret"), verify=ca_file, timeout=10
        )
        assert decode(resp)["statusCode"] == "succeeded"
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - began < 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_rejects_a_bad_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "s.yml"
    bad.write_text("instance_hosts: []\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "exporter.simulator", "--scenario", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=30,
    )
    assert done.returncode == 2 and "instance_hosts: must not be empty" in done.stderr
