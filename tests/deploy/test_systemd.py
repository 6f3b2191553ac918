"""deploy/systemd: the unit passes `systemd-analyze verify`, its exposure score is the one
the README quotes, and what it promises (credential, reload, hardening) is really there.

systemd-analyze comes from Debian's `systemd` package, which scripts/test.sh installs.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from exporter import cli
from exporter.config import check_config

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "mailstore-spe-exporter.service"
SYSUSERS = REPO / "deploy" / "systemd" / "mailstore-spe-exporter.sysusers"
INSTALLED_AT = "/opt/mailstore-spe-exporter/bin/mailstore-spe-exporter"


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail("systemd-analyze is not installed: run scripts/test.sh, which installs "
                    "Debian's systemd package", pytrace=False)
    return path


def _unit() -> dict[str, dict[str, list[str]]]:
    """section -> key -> values (a key may repeat), continuation lines joined."""
    text = UNIT.read_text().replace("\\\n", " ")
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = out.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key, []).append(" ".join(value.split()))
    return out


@pytest.fixture
def runnable_unit(tmp_path) -> Path:
    """The unit with ExecStart pointing at this venv's entry point (verify checks that the
    program exists); nothing else changed."""
    exe = Path(sys.executable).parent / "mailstore-spe-exporter"
    assert exe.exists(), "the package is not installed in this venv (scripts/test.sh does it)"
    path = tmp_path / UNIT.name
    path.write_text(UNIT.read_text().replace(INSTALLED_AT, str(exe)))
    return path


def test_systemd_analyze_verify_is_clean(systemd_analyze, runnable_unit):
    proc = subprocess.run([systemd_analyze, "verify", str(runnable_unit)], capture_output=True,
                          text=True, timeout=60, cwd=runnable_unit.parent)
    # verify exits 0 even for unknown keys (it only warns): any output is a finding.
    findings = [line for line in (proc.stdout + proc.stderr).splitlines()
                if runnable_unit.name in line or "Unknown" in line]
    assert proc.returncode == 0 and findings == [], proc.stdout + proc.stderr


def test_the_readme_quotes_the_measured_exposure(systemd_analyze, runnable_unit):
    proc = subprocess.run([systemd_analyze, "security", "--offline=true", str(runnable_unit)],
                          capture_output=True, text=True, timeout=60, cwd=runnable_unit.parent)
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", proc.stdout)
    assert found, proc.stdout + proc.stderr
    score, verdict = found.groups()
    assert float(score) <= 2.0, f"exposure {score} {verdict}: hardening was lost"
    readme = REPO / "README.md"
    assert f"exposure level **{score} {verdict}**" in readme.read_text(), (
        f"README must quote the measured score: exposure level **{score} {verdict}**")


def test_the_unit_runs_the_installed_exporter_on_the_default_config():
    service = _unit()["Service"]
    exec_start = service["ExecStart"][0].split()
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert exec_start[0] == INSTALLED_AT and Path(exec_start[0]).name in scripts
    assert exec_start[1:] == [f"--config.file={cli.default_config_file()}"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # SIGHUP reloads the config
    assert service["Restart"] == ["on-failure"]


def test_the_unit_is_hardened():
    service = _unit()["Service"]
    expected = {
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "PrivateDevices": "yes", "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native", "UMask": "0077",
    }
    for key, value in expected.items():
        assert service.get(key) == [value], key
    assert "@system-service" in service["SystemCallFilter"]
    # process_start_time_seconds needs /proc/stat (boot time): no ProcSubset=pid
    assert "ProcSubset" not in service


def test_the_user_is_a_system_user_from_sysusers():
    service = _unit()["Service"]
    entries = [line.split() for line in SYSUSERS.read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert entries[0][:2] == ["u", service["User"][0]]
    assert service["Group"] == service["User"]


def test_the_password_credential_works_with_the_config_the_readme_shows(tmp_path, monkeypatch):
    """LoadCredential hands the password over in $CREDENTIALS_DIRECTORY; the config names
    it with ${CREDENTIALS_DIRECTORY}, which the exporter expands."""
    name, _, source = _unit()["Service"]["LoadCredential"][0].partition(":")
    assert source == str(cli.default_config_file().parent / name)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / name).write_text("s3cret\n")
    (credentials / name).chmod(0o400)  # as systemd leaves it
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    snippet = f"password_file: ${{CREDENTIALS_DIRECTORY}}/{name}"
    assert snippet in UNIT.read_text()
    assert snippet in (REPO / "README.md").read_text()
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"targets": {"spe1": {
        "url": "https://spe.example.com:8474", "username": "monitoring",
        "password_file": "${CREDENTIALS_DIRECTORY}/" + name, "tls": {"thumbprint": "AB" * 20},
    }}}))
    config.chmod(0o600)
    ok, text = check_config(config)
    assert ok, text
    assert "warning" not in text, text  # the credential file (0400) is private enough
    from exporter.config import load_config

    target = load_config(config).targets["spe1"]
    assert Path(os.path.expandvars(str(target.password_file))) == credentials / name


def test_the_unit_file_is_valid_ini():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text())
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
