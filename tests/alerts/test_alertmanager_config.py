"""The shipped Alertmanager example (deploy/alertmanager.yml).

* amtool accepts it;
* alerts are routed by their severity label;
* MailStoreSPEExporterDown and MailStoreSPEUnreachable inhibit the data alerts of the same
  exporter / target, but not the alerts that explain an unreachable target.
The e2e test (tests/e2e) runs a real Alertmanager with this file's routes and inhibit_rules.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy" / "alertmanager.yml"
RULES = REPO / "alerts" / "mailstore-spe.rules.yml"


def _alerts() -> dict[str, str]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return {r["alert"]: r["labels"]["severity"] for g in doc["groups"] for r in g["rules"]
            if "alert" in r}


ALERTS = _alerts()
# Alerts that stay visible while their target is unreachable: they say why it is.
EXPLAINS_UNREACHABLE = {
    "MailStoreSPEExporterDown",
    "MailStoreSPEUnreachable",
    "MailStoreSPEAPIAuthenticationFailing",
    "MailStoreSPEAPITLSFailing",
    "MailStoreSPEExporterConfigReloadFailed",
}


def test_amtool_accepts_the_config(amtool: str) -> None:
    proc = subprocess.run(
        [amtool, "check-config", str(CONFIG)], capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout and "2 inhibit rules" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    ("severity", "receiver"), [("critical", "pager"), ("warning", "tickets"), ("info", "null")]
)
def test_routes_by_severity(amtool: str, severity: str, receiver: str) -> None:
    proc = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={CONFIG}",
         f"--verify.receivers={receiver}", "alertname=MailStoreSPEStoreError",
         f"severity={severity}", "target=spe1"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == receiver


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    """One Alertmanager matcher string (=, !=, =~, !~; regexes are anchored)."""
    m = re.fullmatch(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*', matcher)
    assert m, matcher
    name, op, value = m.groups()
    actual = labels.get(name, "")
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    hit = re.fullmatch(value, actual) is not None
    return hit if op == "=~" else not hit


def _inhibited_by(source: str) -> set[str]:
    doc = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    out: set[str] = set()
    for rule in doc["inhibit_rules"]:
        if not all(_matches(m, {"alertname": source}) for m in rule["source_matchers"]):
            continue
        out |= {
            name for name, severity in ALERTS.items()
            if all(_matches(m, {"alertname": name, "severity": severity})
                   for m in rule["target_matchers"])
        }
    return out


def test_matcher_helper() -> None:
    assert _matches('alertname=~"A.+"', {"alertname": "AB"})
    assert not _matches('alertname=~"A"', {"alertname": "AB"})  # anchored
    assert _matches('alertname!~"A(B|C)"', {"alertname": "AD"})
    assert not _matches('alertname!="x"', {"alertname": "x"})


def test_unreachable_inhibits_the_data_alerts_of_its_target() -> None:
    assert _inhibited_by("MailStoreSPEUnreachable") == set(ALERTS) - EXPLAINS_UNREACHABLE
    doc = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    equal = [r["equal"] for r in doc["inhibit_rules"]
             if r["source_matchers"] == ['alertname="MailStoreSPEUnreachable"']]
    assert equal == [["job", "instance", "target"]]


def test_exporter_down_inhibits_every_other_alert_of_its_exporter() -> None:
    assert _inhibited_by("MailStoreSPEExporterDown") == set(ALERTS) - {"MailStoreSPEExporterDown"}
