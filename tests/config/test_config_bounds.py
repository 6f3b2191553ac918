"""Hostile config files (issue 13 B11, B12): alias bombs, absurd durations, files that are
not regular files. Each is refused quickly with an error naming what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from exporter.config import ConfigError, load_config
from exporter.webconfig import WebConfigError, load_web_config

ROOT = Path(__file__).resolve().parents[2]
TARGET = "targets: {spe1: {url: 'https://a', username: u, password: p}}\n"

# 432 bytes that expand to 9**9 (387 million) strings when walked.
ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)


def _bounded(func, seconds: float = 10):
    """Run ``func`` in a thread; fail (instead of hanging the suite) if it does not end."""
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(func())
        except BaseException as exc:  # noqa: BLE001 - inspected by the caller
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s"
    return outcome[0]


def test_alias_bomb_is_refused_quickly(write):
    path = write("config.yml", ALIAS_BOMB + TARGET)
    started = time.monotonic()
    error = _bounded(lambda: load_config(path))
    assert isinstance(error, ConfigError), error
    assert "YAML expands to more than 100000 values" in str(error)
    assert time.monotonic() - started < 5


def test_alias_bomb_via_config_check_exits_1(write):
    path = write("config.yml", ALIAS_BOMB + TARGET)
    result = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "--config.check", f"--config.file={path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert "alias bomb" in result.stdout + result.stderr


def test_alias_bomb_in_the_web_config(write):
    path = write("web.yml", ALIAS_BOMB)
    error = _bounded(lambda: load_web_config(path))
    assert isinstance(error, WebConfigError) and "alias bomb" in str(error)


def test_moderate_aliases_still_work(write):
    text = (
        "defaults: &d {concurrency: 4}\n"
        "targets:\n  spe1: {url: 'https://a', username: u, password: p}\n"
    )
    assert load_config(write("config.yml", text)).defaults.concurrency == 4


@pytest.mark.parametrize(
    ("key", "value"),
    [("interval", "100000000000000d"), ("interval", "366d"), ("read", "999999999999999d")],
)
def test_durations_are_bounded(write, key, value):
    if key == "interval":
        spec = f"collectors: {{stores: {{interval: {value}}}}}"
    else:
        spec = f"timeouts: {{read: {value}}}"
    path = write("config.yml",
                 f"targets: {{spe1: {{url: 'https://a', username: u, password: p, {spec}}}}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "must be at most 365d" in str(info.value)
    assert key in str(info.value)


def test_365_days_is_accepted(write):
    path = write("config.yml", "targets: {spe1: {url: 'https://a', username: u, password: p, "
                 "timeouts: {async_deadline: 365d}}}\n")
    assert load_config(path).targets["spe1"].timeouts.async_deadline == 365 * 86400


def test_dev_zero_is_not_a_config():
    error = _bounded(lambda: load_config("/dev/zero"))
    assert isinstance(error, ConfigError), error
    assert "not a regular file (a character device)" in str(error)


def test_a_fifo_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "config.yml"
    os.mkfifo(fifo)
    error = _bounded(lambda: load_config(fifo), seconds=5)
    assert isinstance(error, ConfigError), error
    assert "not a regular file (a FIFO)" in str(error)


def test_a_directory_and_a_huge_file_are_refused(tmp_path, write):
    with pytest.raises(ConfigError, match=r"not a regular file \(a directory\)"):
        load_config(tmp_path)
    big = write("big.yml", "# " + "x" * (1024 * 1024) + "\n" + TARGET)
    with pytest.raises(ConfigError, match="file is larger than 1048576 bytes"):
        load_config(big)
