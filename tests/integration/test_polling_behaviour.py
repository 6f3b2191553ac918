"""How the exporter behaves over several polls: failures, recovery, counting once."""

from __future__ import annotations

import re
import socket
import time

import requests

from exporter.simulator import DEFAULT_SCENARIO, Simulator, load_scenario
from exporter.simulator.certs import self_signed

from .helpers import exporter_for, k, metric_values, scrape, serving_exporter


def _runs_of_profile(values, instance_id, profile_id):
    return sum(
        value
        for (name, labels), value in values.items()
        if name == "mailstore_spe_profile_runs_total"
        and ("instance_id", instance_id) in labels
        and ("profile_id", profile_id) in labels
    )


def test_profile_runs_are_counted_once_across_overlapping_windows(simulator):
    with serving_exporter(simulator) as exp:
        exp.poller.run_all_once()
        before = metric_values(scrape(exp))
        # hooli's profile 3 runs every 15 minutes, acme's profile 33 every hour.
        simulator.state.advance(2 * 3600)
        exp.poller.run_collector("simulator", "profiles")
        after = metric_values(scrape(exp))
        assert _runs_of_profile(after, "hooli", "3") - _runs_of_profile(before, "hooli", "3") == 8
        assert _runs_of_profile(after, "acme", "33") - _runs_of_profile(before, "acme", "33") == 2
        # The next window overlaps the previous one: nothing is counted twice.
        exp.poller.run_collector("simulator", "profiles")
        exp.poller.run_collector("simulator", "profiles")
        again = metric_values(scrape(exp))
        assert _runs_of_profile(again, "hooli", "3") == _runs_of_profile(after, "hooli", "3")
        assert _runs_of_profile(again, "acme", "33") == _runs_of_profile(after, "acme", "33")


def test_a_failing_collector_keeps_its_last_data_and_others_are_unaffected(simulator):
    with serving_exporter(simulator) as exp:
        exp.poller.run_all_once()
        simulator.state.set_fault("GetStores", "http_status", status=500)
        exp.poller.run_collector("simulator", "stores")
        exp.poller.run_collector("simulator", "statistics")
        v = metric_values(scrape(exp))
        assert v[("mailstore_spe_collector_success", k(collector="stores"))] == 0
        assert v[("mailstore_spe_collector_success", k(collector="statistics"))] == 1
        # what the exporter knew about the stores is still served (until max_data_age)
        acme_2023 = k(instance_id="acme", store_id="1", store_name="2023")
        assert v[("mailstore_spe_store_messages", acme_2023)] == 4100000
        failures = k(function="GetStores", reason="http_5xx")
        assert v[("mailstore_spe_api_request_failures_total", failures)] >= 1


def test_an_instance_that_disappears_disappears_from_metrics(simulator):
    with serving_exporter(simulator) as exp:
        exp.poller.run_all_once()
        assert ("mailstore_spe_instance_messages", k(instance_id="hooli")) in metric_values(
            scrape(exp)
        )
        simulator.state.remove_instance("hooli")
        exp.poller.run_all_once()
        v = metric_values(scrape(exp))
        assert not [key for key in v if ("instance_id", "hooli") in key[1]]
        assert ("mailstore_spe_instance_messages", k(instance_id="acme")) in v


def test_stale_data_is_dropped_after_max_data_age(simulator):
    with serving_exporter(simulator) as exp:
        exp.poller.run_all_once()
        simulator.state.set_fault("GetStores", "http_status", status=503)
        # 3 x the 5-minute interval later, the last good store data is too old
        simulator.state.advance(16 * 60)
        exp.poller.run_collector("simulator", "stores")
        exp.poller.expire()
        v = metric_values(scrape(exp))
        assert not [key for key in v if key[0] == "mailstore_spe_store_messages"]
        assert v[("mailstore_spe_collector_success", k(collector="stores"))] == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_starts_while_spe_is_down_and_recovers_by_itself(tmp_path):
    port = _free_port()
    cert = self_signed(str(tmp_path), "127.0.0.1")
    sim = Simulator(
        load_scenario(DEFAULT_SCENARIO),
        host="127.0.0.1",
        port=port,
        username="admin",
        password="admin-password",
        certfile=cert.certfile,
        keyfile=cert.keyfile,
    )
    sim.ca_file = cert.certfile  # known before the simulator starts
    # Nothing listens on the port yet: SPE is down when the exporter starts.
    try:
        with serving_exporter(sim, url=f"https://127.0.0.1:{port}") as exp:
            exp.poller.run_all_once()
            v = metric_values(scrape(exp))
            assert v[("mailstore_spe_up", k())] == 0
            assert (
                v[
                    (
                        "mailstore_spe_api_request_failures_total",
                        k(function="GetServiceStatus", reason="connection"),
                    )
                ]
                >= 1
            )
            sim.start()
            exp.poller.run_all_once()
            v = metric_values(scrape(exp))
            assert v[("mailstore_spe_up", k())] == 1
            assert v[("mailstore_spe_collector_success", k(collector="stores"))] == 1
    finally:
        sim.stop()


def test_wrong_credentials_give_up_0_and_a_clear_error(simulator):
    with serving_exporter(simulator, password="wrong-password") as exp:
        exp.poller.run_all_once()
        v = metric_values(scrape(exp))
        assert v[("mailstore_spe_up", k())] == 0
        assert (
            v[
                (
                    "mailstore_spe_api_request_failures_total",
                    k(function="GetServiceStatus", reason="http_401"),
                )
            ]
            == 1
        )
        error = exp.health.snapshot()["simulator"]["service"].error
        assert "API password" in error and "wrong-password" not in error


def test_overlapping_runs_are_skipped_and_counted(simulator):
    exp = exporter_for(simulator, collectors={"service": {"interval": "1s"}})
    simulator.state.set_fault("GetServiceStatus", "hang", seconds=2.5)
    exp.start(serve=True, schedule=True)
    try:
        deadline = time.monotonic() + 8
        skipped = 0.0
        while time.monotonic() < deadline and skipped < 1:
            time.sleep(0.2)
            v = metric_values(scrape(exp))
            skipped = v.get(
                ("mailstore_spe_collector_runs_skipped_total", k(collector="service")), 0
            )
        assert skipped >= 1
        # scrapes were served while the run was hanging
        assert exp.poller.running()
    finally:
        simulator.state.clear_faults()
        exp.stop()


def test_instance_process_restarts_are_counted(simulator):
    with serving_exporter(simulator) as exp:
        exp.poller.run_collector("simulator", "process")
        key = k(instance_id="acme")
        v = metric_values(scrape(exp))
        assert v[("mailstore_spe_instance_process_restarts_total", key)] == 0
        first_seen = v[("mailstore_spe_instance_process_first_seen_timestamp_seconds", key)]
        assert first_seen == simulator.state.now()
        for _ in range(2):  # two restarts, each seen by a poll
            simulator.state.stop_instance("acme")
            simulator.state.start_instance("acme")
            simulator.state.advance(60)
            exp.poller.run_collector("simulator", "process")
        v = metric_values(scrape(exp))
        assert v[("mailstore_spe_instance_process_restarts_total", key)] == 2
        restarted = v[("mailstore_spe_instance_process_first_seen_timestamp_seconds", key)]
        assert restarted == simulator.state.now() == first_seen + 120
        assert v[("mailstore_spe_instance_process_restarts_total", k(instance_id="globex"))] == 0


def test_lone_surrogates_from_spe_are_replaced_at_the_boundary(simulator):
    """Issue 13 B4: a lone surrogate (JSON "\\ud800") in a display name or an error message
    neither drops the instances' series while health says "ok" nor breaks the status page."""
    instances = (
        '{"statusCode":"succeeded","result":[{"instanceID":"acme","alias":"a",'
        '"displayName":"Acme \\ud800 Corp","instanceHost":"h","status":"running",'
        '"startStopError":null}]}'
    )
    with serving_exporter(simulator) as exp:
        simulator.state.set_fault("GetInstances", "invalid_json", body=instances)
        simulator.state.set_fault(
            "GetServiceStatus", "invalid_json",
            body='{"statusCode":"failed","error":{"message":"bad \\ud800 thing","details":""}}',
        )
        exp.poller.run_collector("simulator", "instances")
        exp.poller.run_collector("simulator", "service")
        body = scrape(exp)
        info = [line for line in body.splitlines()
                if line.startswith("mailstore_spe_instance_info{")]
        assert len(info) == 1 and "Acme \ufffd Corp" in info[0], info
        status = exp.health.snapshot()["simulator"]["instances"]
        assert status.success is True
        page = requests.get(f"http://127.0.0.1:{exp.web.address[1]}/", timeout=5)
        assert page.status_code == 200 and "bad \ufffd thing" in page.text


def test_failure_counters_exist_at_zero_before_the_first_failure(simulator):
    """Alerts use increase() on the failure counters: each (function, reason) must be
    exported at 0 before its first failure, or that failure has no baseline."""
    from exporter.spe.errors import REASONS

    with serving_exporter(simulator) as exp:
        # Before any poll: every function of the enabled collectors, every reason, at 0.
        v = metric_values(scrape(exp))
        for function in ("GetServiceStatus", "GetInstances", "GetStores", "GetWorkerResults"):
            for reason in REASONS:
                key = ("mailstore_spe_api_request_failures_total", k(function=function,
                                                                   reason=reason))
                assert v.get(key) == 0, key
        exp.poller.run_all_once()
        simulator.state.set_credentials("admin", "rotated-password")
        try:
            exp.poller.run_collector("simulator", "service")
        finally:
            simulator.state.set_credentials("admin", "admin-password")
        v = metric_values(scrape(exp))
        failures = {
            dict(labels)["reason"]: value
            for (name, labels), value in v.items()
            if name == "mailstore_spe_api_request_failures_total"
            and dict(labels)["function"] == "GetServiceStatus"
        }
        assert failures == {**dict.fromkeys(REASONS, 0.0), "http_401": 1.0}


def test_a_run_longer_than_its_interval_is_not_reported_ok(simulator, caplog):
    """Issue 13 B3: while a run is in flight past its interval, and after a run that took
    longer than its interval, the status page does not say "ok"."""
    import threading

    with serving_exporter(simulator, collectors={"service": {"interval": "1s"}}) as exp:
        simulator.state.set_fault("GetServiceStatus", "latency", seconds=2.5)
        url = f"http://127.0.0.1:{exp.web.address[1]}/"
        run = threading.Thread(target=exp.poller.run_collector, args=("simulator", "service"))
        run.start()
        time.sleep(1.8)
        during = requests.get(url, timeout=5).text
        run.join(10)
        after = requests.get(url, timeout=5).text
    row = "<tr><td>service</td><td>1s</td><td>"
    assert re.search(re.escape(row) + r"running for \ds, over its interval</td>", during)
    assert row + "slow: last run took longer than its interval</td>" in after
    assert "collector run took longer than its interval" in caplog.text
