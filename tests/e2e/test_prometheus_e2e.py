"""End to end: what a real Prometheus sees of the exporter polling the simulator.

Checked through Prometheus's HTTP API (not the exporter's /metrics):
* key series carry the values of the default scenario (tests/e2e/conftest.py runs the stack);
* every dashboard panel query returns data (except the panels listed in MAY_BE_EMPTY),
  so the dashboards match what the exporter really exposes once Prometheus adds
  job/instance;
* every shipped alert rule evaluates without error, the problems built into the scenario
  raise their alerts, and faults injected into the simulator at run time raise theirs.

The fault tests undo their fault; they run after the read-only tests (file order).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

from exporter.simulator import DEFAULT_SCENARIO

from .conftest import DOWN_JOB, JOB, REPO, TARGET, Stack

pytestmark = pytest.mark.e2e

MB = 1048576
SCENARIO = yaml.safe_load(Path(DEFAULT_SCENARIO).read_text(encoding="utf-8"))
INSTANCES = {i["id"]: i for i in SCENARIO["instances"]}
SEL = f'job="{JOB}", target="{TARGET}"'


def _load_dashboards():
    spec = importlib.util.spec_from_file_location(
        "mailstore_spe_dashboards_generate", REPO / "dashboards" / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


dashboards = _load_dashboards()


def store_flags(stack: Stack, metric: str) -> set[tuple[str, str]]:
    return {
        (r["metric"]["instance_id"], r["metric"]["store_id"])
        for r in stack.query(f"{metric}{{{SEL}}} == 1")
    }


def scenario_store_flags(key: str) -> set[tuple[str, str]]:
    return {
        (iid, str(s["id"]))
        for iid, inst in INSTANCES.items()
        if inst.get("status", "running") == "running"
        for s in inst.get("stores", [])
        if s.get(key)
    }


@pytest.fixture(scope="module")
def history(stack: Stack) -> Stack:
    """The stack once Prometheus holds a few scrapes, enough for rate() and delta()."""
    stack.wait_for(
        "at least 3 scrapes of the exporter with SPE up",
        lambda: stack.query(f"count_over_time(mailstore_spe_up{{{SEL}}}[5m]) >= 3"),
    )
    return stack


def test_key_series_have_the_scenario_values(history: Stack):
    st = history
    assert st.values(f"mailstore_spe_up{{{SEL}}}", "target") == {TARGET: 1.0}

    # Instances by status: every instance of the scenario, counted by its status.
    expected_status: dict[str, float] = {}
    for inst in INSTANCES.values():
        status = inst.get("status", "running")
        expected_status[status] = expected_status.get(status, 0) + 1
    got_status = st.values(f"sum by (status) (mailstore_spe_instance_status{{{SEL}}})", "status")
    assert {s: v for s, v in got_status.items() if v} == expected_status

    # Archive size and message count: exact for the stalled (not growing) running instance,
    # at least the scenario value for the growing ones (the simulator's clock runs).
    sizes = st.values(f"mailstore_spe_instance_archive_size_bytes{{{SEL}}}", "instance_id")
    messages = st.values(f"mailstore_spe_instance_messages{{{SEL}}}", "instance_id")
    # Instance statistics of an instance without service provider access are refused by
    # SPE (the simulator's default reading of the vendor's rule).
    running = {
        i for i, inst in INSTANCES.items()
        if inst.get("status", "running") == "running"
        and inst.get("service_provider_access") is not False
    }
    assert set(sizes) == running
    for iid in running:
        inst = INSTANCES[iid]
        size = (
            inst["database_file_size_mb"] + inst["content_file_size_mb"]
            + inst["index_file_size_mb"]
        ) * MB
        count = sum(s["statistics_count"] for s in inst["stores"])
        if inst.get("messages_per_hour", 0) == 0:
            assert (sizes[iid], messages[iid]) == (size, count), iid
        else:
            assert size <= sizes[iid] < size + 100 * MB, iid
            assert count <= messages[iid] < count + 1000, iid
    assert "globex" in running and INSTANCES["globex"]["messages_per_hour"] == 0

    # Store health flags: exactly the stores the scenario marks.
    assert store_flags(st, "mailstore_spe_store_error") == scenario_store_flags("error")
    assert store_flags(st, "mailstore_spe_store_needs_upgrade") == scenario_store_flags(
        "needs_upgrade"
    )
    assert store_flags(
        st, "mailstore_spe_store_search_indexes_need_rebuild"
    ) == scenario_store_flags("search_indexes_need_rebuild")

    # Dashboard messages by severity; sub-items detail the entry before them and do not count.
    expected_messages: dict[str, float] = {}
    for msg in (m for m in SCENARIO["messages"] if not m.get("is_sub_item")):
        expected_messages[msg["type"]] = expected_messages.get(msg["type"], 0) + 1
    got_messages = st.values(f"mailstore_spe_service_messages{{{SEL}}}", "message_severity")
    assert {s: v for s, v in got_messages.items() if v} == expected_messages

    # Service provider access off is a state, not a failure: no per-instance failures, no
    # failing collector, and the access gauge names the instance.
    assert st.query(f"mailstore_spe_instance_collect_success{{{SEL}}} == 0") == []
    assert st.query(f"mailstore_spe_collector_success{{{SEL}}} == 0") == []
    no_access = {i for i, inst in INSTANCES.items() if inst.get("service_provider_access") is False}
    off = st.values(
        f"mailstore_spe_instance_service_provider_access_enabled{{{SEL}}} == 0", "instance_id"
    )
    assert no_access and set(off) == no_access


@pytest.mark.parametrize(
    "values",
    [
        None,  # every variable at "All" (.+)
        {"job": JOB, "target": TARGET, "instance_id": "acme"},  # one healthy instance picked
    ],
    ids=["all", "acme"],
)
def test_every_dashboard_panel_query_returns_data(history: Stack, values: dict | None):
    st = history
    queries = dashboards.all_panel_queries(values)
    assert len(queries) > 50
    # Every query must be accepted by Prometheus (the API asserts status "success").
    results = {expr: st.query(expr) for _, _, expr in queries}
    must_have_data = [
        (dash, panel, expr)
        for dash, panel, expr in queries
        if panel not in dashboards.MAY_BE_EMPTY
    ]
    # rate()/increase()/delta() need two samples in their window: the history fixture waited
    # for three scrapes, but give a query that is still empty a few more seconds.
    # No panel needs a longer history (delta over [1d] works with two samples).
    empty = [q for q in must_have_data if not results[q[2]]]
    if empty:
        empty = st.settle(lambda: [q for q in empty if not st.query(q[2])])
    assert empty == [], "panel queries without data (dashboard, panel, expr)"
    # The exporter's scrape job is among the results of the `up` panel.
    up = [expr for _, panel, expr in queries if panel == "Exporter scrape up"]
    assert up and any(r["metric"].get("job") == JOB for r in results[up[0]])


def test_every_alert_rule_evaluates_without_error(history: Stack):
    st = history

    def evaluated_rules():
        rules = [r for g in st.api("rules")["groups"] for r in g["rules"]]
        if rules and all(not r["lastEvaluation"].startswith("0001-") for r in rules):
            return rules
        return None

    rules = st.wait_for("every rule evaluated once", evaluated_rules)
    shipped = yaml.safe_load((REPO / "alerts" / "mailstore-spe.rules.yml").read_text())
    names = {r["alert"] for g in shipped["groups"] for r in g["rules"] if "alert" in r}
    assert {r["name"] for r in rules} == names
    broken = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert broken == {}


# Problems built into the default scenario (see exporter/simulator/README.md) and the alert
# each one must raise. (initech's certificate expiring in 10 days cannot raise one: its
# service provider access is off, so SPE does not answer GetCredentials for it; hooli's does.)
SCENARIO_ALERTS = [
    ("MailStoreSPEInstanceNotRunning", {"instance_id": "umbrella"}),
    ("MailStoreSPEInstanceStartStopError", {"instance_id": "umbrella"}),
    ("MailStoreSPEStoreError", {"instance_id": "hooli", "store_id": "1"}),
    ("MailStoreSPEStoreNeedsUpgrade", {"instance_id": "initech", "store_id": "1"}),
    ("MailStoreSPEStoreSearchIndexesNeedRebuild", {"instance_id": "globex", "store_id": "1"}),
    ("MailStoreSPEProfileFailed", {"instance_id": "globex", "profile_id": "7"}),
    ("MailStoreSPECredentialCertificateExpired", {"instance_id": "globex"}),
    ("MailStoreSPECredentialCertificateExpiringSoon", {"instance_id": "hooli"}),
    ("MailStoreSPEServiceErrorMessages", {}),
    ("MailStoreSPEServiceWarningMessages", {}),
]


def test_the_scenarios_problems_raise_their_alerts(history: Stack):
    st = history

    def missing():
        return [(n, lbl) for n, lbl in SCENARIO_ALERTS if not st.active_alerts(n, **lbl)]

    assert st.settle(missing) == [], "alerts not raised (alertname, labels)"
    for alert in st.api("alerts")["alerts"]:
        if alert["labels"]["job"] != DOWN_JOB:
            assert (alert["labels"]["job"], alert["labels"]["target"]) == (JOB, TARGET)
    # A healthy exporter and SPE, and a tenant without service provider access (a normal
    # state): these do not fire.
    for name in ("MailStoreSPEExporterDown", "MailStoreSPEUnreachable",
                 "MailStoreSPEAPIAuthenticationFailing", "MailStoreSPEAPITLSFailing",
                 "MailStoreSPECollectorFailing", "MailStoreSPEInstanceCollectFailing"):
        assert st.active_alerts(name, job=JOB) == [], name
    assert st.active_alerts("MailStoreSPEInstanceNotRunning", instance_id="acme") == []


def test_stopping_an_instance_raises_instance_not_running(history: Stack):
    st = history
    assert st.active_alerts("MailStoreSPEInstanceNotRunning", instance_id="acme") == []
    st.sim.state.stop_instance("acme", error="e2e: the instance was stopped by the test")
    try:
        st.wait_for(
            "MailStoreSPEInstanceNotRunning for acme",
            lambda: st.active_alerts("MailStoreSPEInstanceNotRunning", instance_id="acme"),
        )
        st.wait_for(
            "MailStoreSPEInstanceStartStopError for acme",
            lambda: st.active_alerts("MailStoreSPEInstanceStartStopError", instance_id="acme"),
        )
    finally:
        st.sim.state.start_instance("acme")
    st.wait_for(
        "MailStoreSPEInstanceNotRunning for acme to resolve",
        lambda: not st.active_alerts("MailStoreSPEInstanceNotRunning", instance_id="acme"),
    )


def test_a_store_error_raises_store_error(history: Stack):
    st = history
    labels = {"instance_id": "acme", "store_id": "2"}
    assert st.active_alerts("MailStoreSPEStoreError", **labels) == []
    st.sim.state.set_store_flags("acme", 2, error="e2e: the database file could not be opened")
    try:
        alerts = st.wait_for(
            "MailStoreSPEStoreError for acme store 2",
            lambda: st.active_alerts("MailStoreSPEStoreError", **labels),
        )
        assert alerts[0]["labels"]["store_name"] == "2024"
        assert alerts[0]["labels"]["severity"] == "critical"
    finally:
        st.sim.state.set_store_flags("acme", 2, error=None)
    st.wait_for(
        "MailStoreSPEStoreError for acme store 2 to resolve",
        lambda: not st.active_alerts("MailStoreSPEStoreError", **labels),
    )


def test_rejected_credentials_raise_unreachable_and_authentication_alerts(history: Stack):
    st = history
    st.sim.state.set_credentials("admin", "rotated-password")
    try:
        st.wait_for(
            "MailStoreSPEUnreachable",
            lambda: st.active_alerts("MailStoreSPEUnreachable", target=TARGET),
        )
        alerts = st.wait_for(
            "MailStoreSPEAPIAuthenticationFailing",
            lambda: st.active_alerts("MailStoreSPEAPIAuthenticationFailing", target=TARGET),
        )
        assert {a["labels"]["reason"] for a in alerts} == {"http_401"}
    finally:
        st.sim.state.set_credentials("admin", "admin-password")
    st.wait_for(
        "mailstore_spe_up back to 1",
        lambda: st.query(f"mailstore_spe_up{{{SEL}}} == 1"),
    )


def test_an_unreachable_exporter_raises_exporter_down(history: Stack):
    st = history
    alerts = st.wait_for(
        "MailStoreSPEExporterDown for the unreachable scrape job",
        lambda: st.active_alerts("MailStoreSPEExporterDown", job=DOWN_JOB),
    )
    assert alerts[0]["labels"]["severity"] == "critical"
    assert st.active_alerts("MailStoreSPEExporterDown", job=JOB) == []
