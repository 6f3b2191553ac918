"""The command line: explicit modes (config file, default path, --demo), --config.check,
help and log-level conventions, signals, and a simulated platform without SIGHUP/glibc."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

from exporter import cli
from exporter.config import load_config
from exporter.logsetup import setup_logging

from .helpers import metric_values

EXPORTER = [sys.executable, "-m", "exporter.cli"]
RUNNER = [sys.executable, str(Path(__file__).with_name("cli_platform_runner.py"))]
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_config(path: Path, sim, port: int = 0) -> Path:
    target = {"url": sim.url, "username": "admin", "password": "admin-password",
              "tls": {"ca_file": str(sim.ca_file)}}
    path.write_text(yaml.safe_dump({"web": {"listen_address": f"127.0.0.1:{port}"},
                                    "targets": {"spe1": target}}))
    path.chmod(0o600)
    return path


def _wait_up(
    port: int, target: str, proc: subprocess.Popen, timeout: float = 20, series: str = ""
) -> dict:
    """Metric values once the target is up (and ``series`` is served: up only says the
    management-server polls succeeded, other collectors may still be running)."""
    deadline = time.monotonic() + timeout
    values: dict = {}
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            values = metric_values(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text)
            up = values.get(("mailstore_spe_up", (("target", target),))) == 1
            if up and (not series or any(name == series for name, _ in values)):
                return values
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"exporter not up for {target}: rc={proc.poll()} {values}")


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    return proc.stdout.read(), proc.stderr.read()


def _popen(cmd: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, cwd=REPO)


# --- --config.check ---------------------------------------------------------------------------


def test_config_check_accepts_the_example(tmp_path):
    env = {**os.environ, "SPE_PASSWORD": "secret"}
    proc = subprocess.run(
        [*EXPORTER, "--config.check", "--config.file", "config.example.yml"],
        capture_output=True, text=True, env=env, timeout=30, cwd=REPO,
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
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 1
    assert "targets.spe1.tls.ca_file: file not found" in proc.stderr


def test_config_check_without_a_file_checks_the_default_path(tmp_path, monkeypatch, capsys,
                                                              simulator):
    default = _write_config(tmp_path / "config.yml", simulator)
    monkeypatch.setattr(cli, "default_config_file", lambda: default)
    assert cli.main(["--config.check"]) == 0
    assert capsys.readouterr().out.startswith("config OK: 1 target (spe1)")
    monkeypatch.setattr(cli, "default_config_file", lambda: tmp_path / "missing.yml")
    assert cli.main(["--config.check"]) == 1
    assert "no config: give --config.file=PATH" in capsys.readouterr().err


# --- explicit modes ---------------------------------------------------------------------------


def test_without_config_or_demo_it_exits_2_with_one_line_saying_what_to_do(tmp_path):
    missing = tmp_path / "etc" / "config.yml"
    proc = subprocess.run(RUNNER, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "DEFAULT_CONFIG_FILE": str(missing)})
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("allocator")]
    assert lines == [
        f"no config: give --config.file=PATH, put one at {missing}, "
        "or run the demo against the bundled simulator with --demo"
    ]
    assert proc.stdout == ""


def test_the_documented_default_path_is_used_without_config_file(tmp_path, simulator):
    port = _free_port()
    default = _write_config(tmp_path / "config.yml", simulator, port)
    proc = _popen(RUNNER, {"DEFAULT_CONFIG_FILE": str(default)})
    try:
        values = _wait_up(port, "spe1", proc)
        assert ("mailstore_spe_up", (("target", "simulator"),)) not in values
        out, _ = _stop(proc)
        assert "Demo mode" not in out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_default_path_on_windows_is_under_programdata(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("ProgramData", "D:\\Data")
    assert cli.default_config_file() == Path("D:\\Data") / "mailstore-spe-exporter" / "config.yml"
    monkeypatch.setattr(sys, "platform", "linux")
    assert cli.default_config_file() == Path("/etc/mailstore-spe-exporter/config.yml")


def test_demo_mode_serves_simulator_metrics_on_the_chosen_address_and_stops_on_sigterm():
    port, sim_port = _free_port(), _free_port()
    proc = _popen([*EXPORTER, "--demo", f"--demo.simulator-address=127.0.0.1:{sim_port}",
                   f"--web.listen-address=127.0.0.1:{port}"])
    try:
        values = _wait_up(port, "simulator", proc, series="mailstore_spe_store_size_bytes")
        assert any(name == "mailstore_spe_store_size_bytes" for name, _ in values)
        assert requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).status_code == 200
        started = time.monotonic()
        out, _ = _stop(proc)
        assert time.monotonic() - started < 5
        banner = "Demo mode (--demo): the bundled SPE simulator runs at https://127.0.0.1:"
        assert f"{banner}{sim_port}" in out
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("argv", [["--demo", "--config.file=x.yml"], ["--demo", "--config.check"]])
def test_demo_with_a_config_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "--demo runs the bundled simulator" in capsys.readouterr().err


def test_a_bad_demo_simulator_address_is_one_line(capsys):
    assert cli.main(["--demo", "--demo.simulator-address=127.0.0.1:http"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("--demo.simulator-address=127.0.0.1:http: ") and err.count("\n") == 1


@pytest.mark.parametrize("address", ["garbage:xx", "1.2.3.4:99999", "::1:9474"])
def test_a_bad_listen_address_is_one_line_before_anything_starts(address, capsys):
    assert cli.main(["--demo", f"--web.listen-address={address}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"--web.listen-address={address}: ") and err.count("\n") == 1


def test_without_the_simulator_extra_demo_mode_names_the_extra(monkeypatch, capsys):
    # As in a wheel installed without [simulator]: cryptography cannot be imported.
    for name in [n for n in sys.modules if n.startswith(("exporter.simulator", "cryptography"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cryptography", None)
    assert cli.main(["--demo"]) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        "demo mode needs the optional extra 'simulator' (package cryptography): "
        "pip install 'mailstore-spe-exporter[simulator]'\n"
    )
    assert "Traceback" not in captured.out + captured.err


def test_without_the_simulator_extra_the_simulator_command_names_the_extra(monkeypatch, capsys):
    for name in [n for n in sys.modules if n.startswith(("exporter.simulator", "cryptography"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cryptography", None)
    assert cli.simulator_main() == 1
    assert capsys.readouterr().err == (
        "mailstore-spe-simulator needs the optional extra 'simulator' (package cryptography): "
        "pip install 'mailstore-spe-exporter[simulator]'\n"
    )


# --- conventions ------------------------------------------------------------------------------


def test_help_shows_the_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per option: no wrapping inside a path
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "(default: 127.0.0.1:0)" in text  # --demo.simulator-address
    assert "(default: /etc/mailstore-spe-exporter/config.yml if it exists)" in text
    assert "(config default: info)" in text and "(config default: logfmt)" in text
    assert "config default 0.0.0.0:9474)" in text
    for action in cli.build_parser()._actions:
        if action.default not in (None, False, "==SUPPRESS=="):
            assert f"(default: {action.default})" in text, action.dest


def test_warn_is_accepted_as_log_level_on_the_command_line_and_in_the_config(tmp_path, simulator):
    assert cli.build_parser().parse_args(["--log.level=warn"]).log_level == "warn"
    config_file = _write_config(tmp_path / "config.yml", simulator)
    data = yaml.safe_load(config_file.read_text())
    config_file.write_text(yaml.safe_dump({**data, "log": {"level": "WARN"}}))
    assert load_config(config_file).log.level == "warn"
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        setup_logging("warn")
        assert root.level == logging.WARNING
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


# --- signals and a platform without SIGHUP and glibc ------------------------------------------


class _FakeExporter:
    def __init__(self) -> None:
        self.reloads = 0

    def reload(self) -> None:
        self.reloads += 1


def test_signal_loop_turns_sighup_into_one_reload_and_sigterm_into_a_stop():
    exporter = _FakeExporter()
    loop = cli.SignalLoop(exporter)
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        assert loop.install() == ["SIGTERM", "SIGINT", "SIGHUP"]
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGHUP)).start()
        threading.Timer(0.4, os.kill, (os.getpid(), signal.SIGTERM)).start()
        loop.run(tick=0.02)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    assert exporter.reloads == 1 and loop.stop.is_set()


def test_signal_loop_on_windows_stops_on_ctrl_break_and_has_no_sighup(monkeypatch, caplog):
    # Windows' signal module: no SIGHUP, but SIGBREAK (Ctrl+Break from a service wrapper).
    monkeypatch.delattr(signal, "SIGHUP")
    monkeypatch.setattr(signal, "SIGBREAK", 21, raising=False)
    installed: dict = {}
    monkeypatch.setattr(signal, "signal", lambda sig, handler: installed.setdefault(sig, handler))
    loop = cli.SignalLoop(_FakeExporter())
    with caplog.at_level(logging.INFO, logger="exporter"):
        assert loop.install() == ["SIGTERM", "SIGINT", "SIGBREAK"]
    assert list(installed) == [signal.SIGTERM, signal.SIGINT, 21]
    assert all(handler == loop._on_stop for handler in installed.values())
    assert "reload with POST /-/reload" in caplog.text


def test_on_a_windows_like_platform_it_starts_reloads_via_lifecycle_and_stops(tmp_path, simulator):
    port = _free_port()
    config_file = _write_config(tmp_path / "config.yml", simulator, port)
    proc = _popen([*RUNNER, f"--config.file={config_file}", "--web.enable-lifecycle",
                   "--log.level=debug"], {"SIMULATE_WINDOWS": "1"})
    try:
        _wait_up(port, "spe1", proc)
        r = requests.post(f"http://127.0.0.1:{port}/-/reload", timeout=10)
        assert r.status_code == 200 and "config reloaded" in r.text
        _, err = _stop(proc)
        assert "allocator libc found: False" in err
        assert "no SIGHUP on this platform" in err
        assert 'msg="allocator settings" applied="none (not glibc' in err
    finally:
        if proc.poll() is None:
            proc.kill()


# --- scripts/run.sh: the README's first command stays the demo --------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [([], ["--demo"]), (["--config.file=config.yml"], ["--config.file=config.yml"])],
)
def test_run_sh_runs_the_demo_without_arguments_and_passes_arguments_on(tmp_path, args,
                                                                        expected):
    """run.sh in a copy of the repo layout whose .venv holds stand-ins that record calls."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "run.sh", tmp_path / "scripts" / "run.sh")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "pip", "mailstore-spe-exporter"):
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "{tmp_path}/calls"\n')
        stub.chmod(0o755)
    proc = subprocess.run(["bash", str(tmp_path / "scripts" / "run.sh"), *args],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0].startswith("pip install") and "-e .[simulator]" in calls[0]
    assert calls[1:] == [" ".join(["mailstore-spe-exporter", *expected])]
