"""File-level behaviour: permission warnings, unreadable files, check_config, the example."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from exporter.config import COLLECTOR_DEFAULTS, Config, ConfigError, check_config, load_config
from exporter.config.errors import known_keys_at

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config.example.yml"

TWO_TARGETS = """
targets:
  spe1: {url: "https://a", username: u, password: p}
  spe2: {url: "https://b", username: u, password: p}
"""

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@posix_only
def test_group_readable_config_file_logs_a_warning(write, caplog) -> None:
    path = write("config.yml", TWO_TARGETS, mode=0o640)
    with caplog.at_level(logging.WARNING, logger="exporter.config"):
        load_config(path)
    assert _warnings(caplog) == [
        f"config file {path} is readable by group/others (mode 0640) and may contain secrets; "
        f"run chmod 600 {path}"
    ]


@posix_only
def test_private_config_file_logs_nothing(write, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="exporter.config"):
        load_config(write("config.yml", TWO_TARGETS, mode=0o600))
    assert _warnings(caplog) == []


@posix_only
@pytest.mark.parametrize(("mode", "warned"), [(0o644, True), (0o640, False), (0o400, False)])
def test_password_file_readable_by_others_logs_a_warning(write, caplog, mode, warned) -> None:
    secret = write("pw.txt", "pw\n", mode=mode)
    path = write(
        "config.yml", "targets:\n  spe1: {url: 'https://a', username: u, password_file: pw.txt}\n"
    )
    with caplog.at_level(logging.WARNING, logger="exporter.config"):
        load_config(path)
    expected = f"password file {secret} is readable by others (mode {mode:04o})"
    assert any(expected in line for line in _warnings(caplog)) is warned


def test_plain_http_and_skipped_verification_log_warnings(write, caplog) -> None:
    path = write(
        "config.yml",
        "targets:\n  spe1: {url: 'http://a', username: u, password: p,"
        " tls: {insecure_skip_verify: true}}\n",
    )
    with caplog.at_level(logging.WARNING, logger="exporter.config"):
        load_config(path)
    assert _warnings(caplog) == [
        "targets.spe1.url: plain http sends the SPE password unencrypted; use https",
        "targets.spe1.tls.insecure_skip_verify: TLS certificate verification is disabled; "
        "prefer ca_file or thumbprint",
    ]


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.yml")
    assert str(caught.value) == f"{tmp_path / 'absent.yml'}: file not found"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_password_file(write) -> None:
    write("pw.txt", "pw\n", mode=0o000)
    path = write(
        "config.yml", "targets:\n  spe1: {url: 'https://a', username: u, password_file: pw.txt}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.errors == [
        f"targets.spe1.password_file: file not readable (permission denied): {path.parent}/pw.txt"
    ]


def test_check_config_success_lists_targets(write) -> None:
    ok, text = check_config(write("config.yml", TWO_TARGETS))
    assert (ok, text) == (True, "config OK: 2 targets (spe1, spe2)")


def test_check_config_failure_returns_the_error_text(write) -> None:
    path = write("config.yml", "targets:\n  spe1: {url: 'https://a', username: u}\n")
    assert check_config(path) == (
        False,
        f"{path}: targets.spe1: missing password: set password or password_file",
    )


@posix_only
def test_check_config_includes_warnings(write) -> None:
    ok, text = check_config(write("config.yml", TWO_TARGETS, mode=0o644))
    assert ok
    assert text.splitlines()[0] == "config OK: 2 targets (spe1, spe2)"
    assert text.splitlines()[1].startswith("warning: config file ")


def test_example_config_is_valid(monkeypatch) -> None:
    monkeypatch.setenv("SPE_PASSWORD", "example")
    config = load_config(EXAMPLE)
    spe1 = config.targets["spe1"]
    assert spe1.password_value() == "example"
    schedules = spe1.collector_schedules()
    assert {name: s.interval_seconds for name, s in schedules.items()} == COLLECTOR_DEFAULTS


def _all_keys(loc: tuple[str, ...] = ()) -> set[str]:
    """Every key name the schema accepts, at any depth."""
    keys: set[str] = set()
    for name in known_keys_at(Config, loc):
        keys.add(name)
        # Descend into sub-models; below a dict (targets) any key stands for the element.
        for sub in ((*loc, name), (*loc, name, "any")):
            if known_keys_at(Config, sub):
                keys |= _all_keys(sub)
    return keys


def test_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = _all_keys()
    assert {"listen_address", "ca_file", "password_file", "async_deadline", "credentials"} <= keys
    missing = sorted(key for key in keys if not re.search(rf"\b{key}:", text))
    assert missing == []
