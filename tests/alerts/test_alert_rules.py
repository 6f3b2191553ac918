"""Checks of the shipped alert rules (alerts/mailstore-spe.rules.yml).

* promtool accepts the file (`check rules`) and the unit tests pass (`test rules`);
* every alert has a unit test with a firing and a not-firing case;
* every alert has severity/summary/description/runbook_url, and the runbook anchor exists;
* every alert has a `for:` or a comment saying why not ("No for: ...");
* scripts/runbook_base.py turns the repository-relative runbook links into full URLs;
* every metric and selector label used exists in the metric contract (exporter.metricdefs).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from exporter.metricdefs import lookup_family

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "alerts" / "mailstore-spe.rules.yml"
UNIT_TESTS = sorted((REPO / "tests" / "alerts").glob("*.test.yml"))
RUNBOOK = REPO / "docs" / "runbooks" / "README.md"
# Runbook links are the runbook's path in this repository (no guessed domain);
# scripts/runbook_base.py puts the user's base URL in front when installing.
RUNBOOK_BASE = "docs/runbooks/README.md#"
SEVERITIES = {"critical", "warning", "info"}
# Labels Prometheus attaches at scrape time; not part of the exporter's contract.
SCRAPE_LABELS = {"job", "instance"}


def _alerts() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


ALERTS = _alerts()
ALERT_IDS = [a["alert"] for a in ALERTS]


def github_anchor(heading: str) -> str:
    """The anchor GitHub generates for a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    anchors = set()
    for line in RUNBOOK.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#{1,6}\s+(.+?)\s*#*$", line)
        if m:
            anchors.add(github_anchor(m.group(1)))
    return anchors


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )


def test_promtool_check_rules(promtool: str) -> None:
    _run([promtool, "check", "rules", str(RULES)], cwd=REPO)


def test_promtool_unit_tests(promtool: str) -> None:
    assert UNIT_TESTS, "no tests/alerts/*.test.yml found"
    # rule_files in the unit tests are relative to the test file.
    for path in UNIT_TESTS:
        _run([promtool, "test", "rules", path.name], cwd=path.parent)


def test_alert_names_unique_and_prefixed() -> None:
    assert len(ALERT_IDS) == len(set(ALERT_IDS))
    for name in ALERT_IDS:
        assert name.startswith("MailStoreSPE"), name


@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_IDS)
def test_alert_has_severity_and_annotations(rule: dict) -> None:
    assert rule.get("labels", {}).get("severity") in SEVERITIES, rule["alert"]
    ann = rule.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        assert ann.get(key, "").strip(), f"{rule['alert']}: annotation {key} missing"
    # The description must say which target/object is affected.
    assert "{{ $labels." in ann["description"], f"{rule['alert']}: description has no labels"


@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_IDS)
def test_runbook_url_points_at_existing_section(rule: dict) -> None:
    url = rule["annotations"]["runbook_url"]
    assert url.startswith(RUNBOOK_BASE), url
    anchor = url[len(RUNBOOK_BASE):]
    assert anchor == github_anchor(rule["alert"]), f"{rule['alert']}: anchor {anchor!r}"
    assert anchor in runbook_anchors(), f"no heading for #{anchor} in {RUNBOOK}"


def _rule_blocks() -> dict[str, str]:
    """The source text of each alert rule (from its `- alert:` line to the next rule)."""
    text = RULES.read_text(encoding="utf-8")
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"^\s*- alert: (\S+)$", text, re.M)]
    ends = [m.start() for m in re.finditer(r"^\s*- (alert|record):|^  - name:", text, re.M)]
    blocks = {}
    for start, name in starts:
        end = min((e for e in ends if e > start), default=len(text))
        blocks[name] = text[start:end]
    return blocks


@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_IDS)
def test_alert_has_for_or_says_why_not(rule: dict) -> None:
    if "for" in rule:
        return
    block = _rule_blocks()[rule["alert"]]
    assert re.search(r"#\s*No `?for:`?", block), (
        f"{rule['alert']} has no for: and no '# No for: <why>' comment"
    )


def test_runbook_base_script_prefixes_every_link(promtool: str, tmp_path: Path) -> None:
    base = "https://runbooks.test/mailstore-spe/"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "runbook_base.py"), base],
        input=RULES.read_text(encoding="utf-8"), capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "rules.yml"
    out.write_text(proc.stdout, encoding="utf-8")
    _run([promtool, "check", "rules", str(out)], cwd=tmp_path)
    doc = yaml.safe_load(proc.stdout)
    urls = [r["annotations"]["runbook_url"] for g in doc["groups"] for r in g["rules"]
            if "alert" in r]
    assert len(urls) == len(ALERTS)
    assert all(u.startswith(base + RUNBOOK_BASE) for u in urls), urls
    # Everything but the links is unchanged.
    assert re.sub(re.escape(base), "", proc.stdout) == RULES.read_text(encoding="utf-8")
    bad = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "runbook_base.py"), "git.example.org"],
        input="", capture_output=True, text=True, check=False,
    )
    assert bad.returncode == 2
    assert "base URL must start with http:// or https://, got 'git.example.org'" in bad.stderr


def test_every_alert_has_firing_and_quiet_unit_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in doc["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert set(ALERT_IDS) - firing == set(), "alerts without a firing test case"
    assert set(ALERT_IDS) - quiet == set(), "alerts without a not-firing test case"
    assert (firing | quiet) - set(ALERT_IDS) == set(), "tests for unknown alerts"


# --- metric names against the contract -------------------------------------------------------

_SELECTOR = re.compile(r"\b(mailstore_spe_[a-z0-9_]+)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names used in its matchers) for every mailstore_spe_ selector."""
    out = []
    for m in _SELECTOR.finditer(expr):
        labels = set(_MATCHER.findall(m.group(2) or ""))
        out.append((m.group(1), labels))
    return out


def test_selector_helper_finds_names_and_labels() -> None:
    expr = 'rate(mailstore_spe_a_total{result=~"x|y", target!="z"}[5m]) * on(t) mailstore_spe_b'
    assert selectors(expr) == [
        ("mailstore_spe_a_total", {"result", "target"}),
        ("mailstore_spe_b", set()),
    ]


@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_IDS)
def test_rule_uses_only_contract_metrics(rule: dict) -> None:
    expr = rule["expr"]
    found = selectors(expr)
    if not found:
        assert re.search(r"\bup\b", expr), f"{rule['alert']} uses no exporter metric"
    for name, labels in found:
        fam = lookup_family(name)
        assert fam is not None, f"{rule['alert']}: {name} is not in the metric contract"
        allowed = set(fam.labels) | SCRAPE_LABELS
        if fam.type == "histogram" and name.endswith("_bucket"):
            allowed.add("le")
        assert labels <= allowed, f"{rule['alert']}: {name} has no label(s) {labels - allowed}"
