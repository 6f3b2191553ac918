"""The whole exporter against the SPE simulator's default scenario, over real HTTPS.

Expected values are computed from the scenario file itself, so the test proves the
exporter turns what SPE reports into the right metrics.
"""

from __future__ import annotations

import logging
import subprocess

import pytest
import requests
import yaml

from exporter.metricdefs import FAMILIES
from exporter.simulator import DEFAULT_SCENARIO, Simulator, load_scenario

from .helpers import MB, exporter_for, k, metric_values, scrape

SCENARIO = yaml.safe_load(open(DEFAULT_SCENARIO, encoding="utf-8"))
INSTANCES = {i["id"]: i for i in SCENARIO["instances"]}
RUNNING = [i for i in INSTANCES.values() if i["status"] == "running"]


@pytest.fixture(scope="module")
def polled(simulator):
    """An exporter that has run every collector once against the frozen simulator."""
    exp = exporter_for(simulator)
    exp.start(schedule=False)
    exp.poller.run_all_once()
    yield exp, scrape(exp)
    exp.stop()


def test_every_family_of_the_contract_is_exported(polled, simulator):
    exp, _ = polled
    # Long-running operation series appear once an SPE call went long-running.
    simulator.state.set_fault("GetServiceStatus", "long_running", steps=2, step_seconds=0.05)
    try:
        exp.poller.run_collector("simulator", "service")
    finally:
        simulator.state.clear_faults()
    values = metric_values(scrape(exp))
    present = {name for name, _ in values}
    missing = []
    for fam in FAMILIES.values():
        if fam.type == "histogram":
            names = {fam.name + suffix for suffix in ("_bucket", "_sum", "_count")}
        else:
            names = {fam.sample_name()}
        if fam.name == "mailstore_spe_async_operation_progress_ratio":
            continue  # only while a call is running; covered in tests/core/test_telemetry.py
        if fam.name == "mailstore_spe_maintenance_runs_skipped":
            continue  # only with maintenance configured; covered in tests/maintenance/
        if not names & present:
            missing.append(fam.name)
    assert missing == []


def test_instance_values_match_the_scenario(polled):
    _, body = polled
    v = metric_values(body)
    for inst in RUNNING:
        iid = inst["id"]
        key = k(instance_id=iid)
        messages = sum(s["statistics_count"] for s in inst["stores"])
        if inst.get("service_provider_access") is False:
            # GetInstanceStatistics refused (the default reading of the vendor's rule; see
            # test_service_provider_access_off_is_state_not_failure for both readings).
            assert ("mailstore_spe_instance_messages", key) not in v
            _assert_stores(v, inst)
            continue
        assert v[("mailstore_spe_instance_messages", key)] == messages
        db, content, index = (
            inst["database_file_size_mb"],
            inst["content_file_size_mb"],
            inst["index_file_size_mb"],
        )
        assert v[("mailstore_spe_instance_database_size_bytes", key)] == db * MB
        assert v[("mailstore_spe_instance_content_size_bytes", key)] == content * MB
        assert v[("mailstore_spe_instance_index_size_bytes", key)] == index * MB
        assert v[("mailstore_spe_instance_archive_size_bytes", key)] == (db + content + index) * MB
        _assert_stores(v, inst)


def _assert_stores(v, inst):
    iid = inst["id"]
    for store in inst["stores"]:
        skey = k(instance_id=iid, store_id=str(store["id"]), store_name=store["name"])
        assert v[("mailstore_spe_store_size_bytes", skey)] == store["statistics_size"]
        assert v[("mailstore_spe_store_messages", skey)] == store["statistics_count"]
        assert v[("mailstore_spe_store_error", skey)] == (1 if store.get("error") else 0)
        assert v[("mailstore_spe_store_needs_upgrade", skey)] == int(
            bool(store.get("needs_upgrade"))
        )
        assert v[("mailstore_spe_store_search_indexes_need_rebuild", skey)] == int(
            bool(store.get("search_indexes_need_rebuild"))
        )
        state = k(
            instance_id=iid,
            store_id=str(store["id"]),
            store_name=store["name"],
            state=store["requested_state"],
        )
        assert v[("mailstore_spe_store_state", state)] == 1


def test_status_of_every_instance_is_a_state_set(polled):
    _, body = polled
    v = metric_values(body)
    for iid, inst in INSTANCES.items():
        for status in ("running", "stopped", "starting", "stopping", "frozen"):
            key = k(instance_id=iid, status=status)
            assert v[("mailstore_spe_instance_status", key)] == (status == inst["status"])
        error_key = k(instance_id=iid)
        expected = 1 if inst.get("start_stop_error") else 0
        assert v[("mailstore_spe_instance_start_stop_error", error_key)] == expected


def test_service_status_values(polled):
    _, body = polled
    v = metric_values(body)
    top_level = [m for m in SCENARIO["messages"] if not m.get("is_sub_item")]
    assert len(top_level) < len(SCENARIO["messages"])  # the scenario has a sub-item
    for severity in ("information", "warning", "error"):
        expected = sum(1 for m in top_level if m["type"] == severity)
        key = k(message_severity=severity)
        assert v[("mailstore_spe_service_messages", key)] == expected
    # One update notice, one SMTP warning, one index rebuild; the sub-item is not counted.
    categories = {"update": 1, "smtp": 1, "search_index": 1, "license": 0, "certificate": 0,
                  "other": 0}
    for category, expected in categories.items():
        assert v[("mailstore_spe_service_messages_by_category", k(category=category))] == expected
    for host in SCENARIO["instance_hosts"]:
        on_host = [i for i in INSTANCES.values() if i["host"] == host["name"]]
        key = k(server_name=host["name"])
        assert v[("mailstore_spe_instance_host_instances", key)] == len(on_host)
        running = sum(1 for i in on_host if i["status"] == "running")
        assert v[("mailstore_spe_instance_host_running_instances", key)] == running
    assert v[("mailstore_spe_up", k())] == 1


def test_users_exclude_archiveadmin_and_legal_hold(polled):
    _, body = polled
    v = metric_values(body)
    for inst in RUNNING:
        key = k(instance_id=inst["id"])
        if not inst["service_provider_access"]:
            assert ("mailstore_spe_instance_users", key) not in v
            continue
        assert v[("mailstore_spe_instance_users", key)] == len(inst["users"])
        for status in ("Disabled", "Enabled"):
            expected = sum(1 for u in inst["users"] if u.get("mfa_status", "Disabled") == status)
            mfa = k(instance_id=inst["id"], mfa_status=status)
            assert v[("mailstore_spe_instance_users_by_mfa_status", mfa)] == expected
        expected = int(bool(inst.get("legal_hold_enabled")))
        assert v[("mailstore_spe_instance_legal_hold_enabled", key)] == expected


NEEDS_ACCESS = ("users", "profiles", "jobs", "credentials", "compliance")


@pytest.mark.parametrize("refuses_statistics", [True, False], ids=["refused", "answered"])
def test_service_provider_access_off_is_state_not_failure(refuses_statistics, caplog):
    """initech's tenant has service provider access off. Whether SPE then also refuses
    GetInstanceStatistics and GetInstanceProcessLiveStatistics is not known: both readings.
    Refused calls are no failure: every collector succeeds, initech has no outcome for the
    refused collectors, the access gauge says 0, and the state is logged once."""
    scenario = load_scenario(DEFAULT_SCENARIO)
    scenario.access_off_refuses_statistics = refuses_statistics
    sim = Simulator(scenario, host="127.0.0.1", port=0, username="admin",
                    password="admin-password")
    sim.state.clock.freeze()
    sim.start()
    caplog.set_level(logging.INFO, logger="exporter.collectors.access")
    try:
        exp = exporter_for(sim)
        exp.start(schedule=False)
        try:
            exp.poller.run_all_once()
            exp.poller.run_all_once()  # a second poll logs nothing new
            v = metric_values(scrape(exp))
            landing = requests.get(f"http://127.0.0.1:{exp.web.address[1]}/", timeout=5).text
        finally:
            exp.stop()
    finally:
        sim.stop()
    outcome = "mailstore_spe_instance_collect_success"
    refused = NEEDS_ACCESS + (("statistics", "process") if refuses_statistics else ())
    answered = ("stores",) + (() if refuses_statistics else ("statistics", "process"))
    for collector in refused:
        assert (outcome, k(collector=collector, instance_id="initech")) not in v, collector
        assert v[(outcome, k(collector=collector, instance_id="acme"))] == 1
    for collector in answered:
        assert v[(outcome, k(collector=collector, instance_id="initech"))] == 1, collector
    for collector in (*refused, *answered, "access"):
        assert v[("mailstore_spe_collector_success", k(collector=collector))] == 1, collector
    gauge = "mailstore_spe_instance_service_provider_access_enabled"
    assert v[(gauge, k(instance_id="initech"))] == 0
    assert v[(gauge, k(instance_id="acme"))] == 1
    # Not counted as failures; the calls themselves are counted.
    assert {key: n for key, n in v.items()
            if key[0] == "mailstore_spe_api_request_failures_total" and n} == {}
    has_stats = ("mailstore_spe_instance_messages", k(instance_id="initech")) in v
    assert has_stats is not refuses_statistics
    assert "skipped: provider access off (1 instances)" in landing
    lines = [r for r in caplog.records if r.name == "exporter.collectors.access"]
    assert [(r.getMessage(), r.instance_id) for r in lines] == [
        ("service provider access off", "initech")
    ]


def test_credentials_expiry_from_the_scenario(polled, simulator):
    _, body = polled
    v = metric_values(body)
    now = simulator.state.now()
    for inst in RUNNING:
        if not inst["service_provider_access"]:
            continue
        for cred in inst.get("credentials", []):
            key = k(
                credential_id=str(cred["id"]),
                credential_type=cred["type"],
                instance_id=inst["id"],
            )
            expiry = v[("mailstore_spe_credential_certificate_expiry_timestamp_seconds", key)]
            days = (expiry - now) / 86400
            assert days == pytest.approx(cred["certificate_expires_in_days"], abs=1)


def test_promtool_accepts_the_scrape(polled, promtool):
    _, body = polled
    proc = subprocess.run([promtool, "check", "metrics"], input=body.encode(), capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()


def test_http_surface(polled):
    exp, _ = polled
    base = f"http://127.0.0.1:{exp.web.address[1]}"
    r = requests.get(base + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=5)
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    r = requests.get(
        base + "/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
        timeout=5,
    )
    assert r.headers["Content-Type"].startswith("application/openmetrics-text")
    assert r.text.endswith("# EOF\n")
    landing = requests.get(base + "/", timeout=5)
    assert landing.status_code == 200
    assert "skipped: provider access off (1 instances)" in landing.text
    # SPE's own dashboard messages, the sub-item indented under its entry.
    assert "<h3>SPE dashboard messages (GetServiceStatus)</h3>" in landing.text
    assert ("<li>error: Instance globex on ih01: One or more search indexes have to be "
            "rebuilt.</li><li style='margin-left:2em'>Archive store 2024</li>") in landing.text
    assert "<li>information: A new MailStore Service Provider Edition version" in landing.text
    assert "password" not in landing.text.lower()
    assert requests.get(base + "/-/healthy", timeout=5).status_code == 200
    assert requests.get(base + "/nope", timeout=5).status_code == 404
    r = requests.post(base + "/metrics", timeout=5)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
    # not scheduled in this fixture: not ready
    assert requests.get(base + "/-/ready", timeout=5).status_code == 503
