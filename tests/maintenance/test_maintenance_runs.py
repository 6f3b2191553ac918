"""Scheduled maintenance against the simulator: outcomes, async metrics, overlap, shutdown.

Runs are started with ``MaintenanceRunner.run`` (what the scheduler job calls) so each test
controls exactly when an operation starts; the overlap test lets APScheduler drive it.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
import requests

from exporter.collectors import ALL_COLLECTORS
from exporter.simulator import Simulator
from exporter.spe.client import SPEClient
from exporter.spe.errors import SPEFunctionNotAllowedError
from tests.integration.helpers import exporter_for, k, metric_values, scrape

JOB = "maintenance/simulator/0"  # the first maintenance entry of target "simulator"
VERIFY = {
    "function": "VerifyStores",
    "args": {"instanceID": "acme", "includeIndexes": False},
    "schedule": {"interval": "1h"},
}
NO_COLLECTORS = {name: {"enabled": False} for name in ALL_COLLECTORS}


def verify(**changes):
    return {**VERIFY, **changes}


def steps(sim: Simulator, function="VerifyStores", **params) -> None:
    params.setdefault("step_seconds", 0.1)
    sim.state.set_fault(function, "long_running", **params)


def started(sim, *maintenance, schedule=False, **overrides):
    exp = exporter_for(sim, maintenance=list(maintenance), **overrides)
    exp.start(serve=True, schedule=schedule)
    return exp


def fn(function="VerifyStores", **labels):
    return k(function=function, **labels)


def probe(sim: Simulator) -> SPEClient:
    """A client without allow-list, to look at tasks the exporter started."""
    return SPEClient(sim.url, "admin", "admin-password", ca_file=sim.ca_file)


def record_tokens(exp) -> list[str]:
    telemetry = exp.poller.targets["simulator"].telemetry
    tokens: list[str] = []
    original = telemetry.async_started

    def async_started(function, token):
        tokens.append(token)
        original(function, token)

    telemetry.async_started = async_started
    return tokens


def test_success_after_several_status_versions(sim):
    steps(sim, steps=4)
    exp = started(sim, verify())
    try:
        assert exp.poller.maintenance.run(JOB) == "succeeded"
        v = metric_values(scrape(exp))
    finally:
        exp.stop()
    assert v[("mailstore_spe_async_operations_total", fn(result="succeeded"))] == 1
    assert v[("mailstore_spe_async_operations_total", fn(result="failed"))] == 0
    assert v[("mailstore_spe_async_operations_in_progress", fn())] == 0
    assert v[("mailstore_spe_async_operation_duration_seconds_count", fn())] == 1
    assert v[("mailstore_spe_async_operation_last_duration_seconds", fn())] >= 0.35
    assert v[("mailstore_spe_async_operation_last_success_timestamp_seconds", fn())] == (
        sim.state.now()
    )
    assert ("mailstore_spe_async_operation_progress_ratio", fn()) not in v
    assert v[("mailstore_spe_api_requests_total", fn())] == 1
    assert v[("mailstore_spe_maintenance_runs_skipped_total", fn())] == 0


def test_failure_keeps_the_spe_error_message_in_log_and_landing_page(sim, caplog):
    message = "Store 'Archive 2024' could not be verified: index file damaged."
    steps(sim, steps=2, outcome="failed", error_message=message)
    exp = started(sim, verify(name="weekly verify"))
    try:
        with caplog.at_level(logging.INFO):
            assert exp.poller.maintenance.run(JOB) == "failed"
        body = scrape(exp)
        page = requests.get(f"http://127.0.0.1:{exp.web.address[1]}/", timeout=5).text
    finally:
        exp.stop()
    v = metric_values(body)
    assert v[("mailstore_spe_async_operations_total", fn(result="failed"))] == 1
    assert v[("mailstore_spe_api_request_failures_total", fn(reason="api_error"))] == 1
    assert "damaged" not in body  # a message is never a label
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [(r.getMessage(), r.function) for r in warnings] == [
        ("long-running SPE operation failed", "VerifyStores")
    ]
    # SPE's message, then the last lines of the task's logOutput (vendor shape: each status
    # carries its new lines; a status skipped by the long-poll may be missing).
    tail = " Last log lines: Starting VerifyStores... | Creating a list of items to process..."
    assert warnings[0].error.startswith(message + tail)
    finished = [r for r in caplog.records if r.getMessage() == "maintenance run finished"]
    assert [(r.operation, r.result) for r in finished] == [("weekly verify", "failed")]
    # Last error per function, and the maintenance entry with its last result.
    assert "<td>VerifyStores</td><td>Store &#x27;Archive 2024&#x27; could not be" in page
    assert "damaged. Last log lines: Starting VerifyStores... | Creating a list" in page
    assert "<td>weekly verify</td><td>every 1h</td>" in page
    assert "<td>failed</td><td>0</td>" in page


def test_deadline_sends_cancel_async_and_counts_timeout(sim):
    steps(sim, steps=2, never_finish=True)
    exp = started(sim, verify(deadline="600ms"))
    tokens = record_tokens(exp)
    try:
        began = time.monotonic()
        assert exp.poller.maintenance.run(JOB) == "timeout"
        assert time.monotonic() - began < 2.0
        v = metric_values(scrape(exp))
        (status,) = exp.operations()["simulator"].tasks
    finally:
        exp.stop()
    assert v[("mailstore_spe_async_operations_total", fn(result="timeout"))] == 1
    assert v[("mailstore_spe_api_request_failures_total", fn(reason="async_timeout"))] == 1
    assert status.last_error.startswith(
        "long-running call did not finish within its deadline of 0.6 s; cancel-async was sent."
    )
    # The server got cancel-async: the task reports its cancelled end state.
    assert probe(sim).get_status(tokens[0], -1, 0).status_code == "cancelled"


@pytest.mark.parametrize("shape", ["progressing", "vendor"])
def test_progress_is_exported_while_the_operation_runs(sim, shape, monkeypatch):
    """Progress is exported once SPE reports some; SPE's own (vendor) shape never does."""
    monkeypatch.setattr(sim.state.scenario.behaviour, "long_running", shape)
    steps(sim, steps=4, step_seconds=0.4)
    exp = started(sim, verify())
    seen: set[float] = set()
    in_progress: set[float] = set()
    try:
        run = threading.Thread(target=exp.poller.maintenance.run, args=(JOB,))
        run.start()
        while run.is_alive():
            v = metric_values(scrape(exp))
            in_progress.add(v.get(("mailstore_spe_async_operations_in_progress", fn()), 0))
            ratio = v.get(("mailstore_spe_async_operation_progress_ratio", fn()))
            if ratio is not None:
                seen.add(ratio)
            time.sleep(0.05)
        v = metric_values(scrape(exp))
    finally:
        exp.stop()
    if shape == "progressing":
        assert {0.25, 0.5, 0.75} <= seen <= {0.25, 0.5, 0.75}
    else:
        assert seen == set()  # percentProgress stays 0: no ratio that reads "0 % done"
    assert 1 in in_progress
    assert ("mailstore_spe_async_operation_progress_ratio", fn()) not in v


def test_overlapping_scheduled_run_is_skipped_and_counted(sim):
    steps(sim, steps=5, step_seconds=0.5)  # 2.5 s per run, scheduled every second
    exp = started(sim, verify(schedule={"interval": "1s"}), schedule=True, collectors=NO_COLLECTORS)
    try:
        deadline = time.monotonic() + 6
        skipped = 0.0
        while time.monotonic() < deadline and skipped < 1:
            time.sleep(0.1)
            v = metric_values(scrape(exp))
            assert v.get(("mailstore_spe_async_operations_in_progress", fn()), 0) <= 1
            skipped = v[("mailstore_spe_maintenance_runs_skipped_total", fn())]
        (status,) = exp.operations()["simulator"].tasks
    finally:
        exp.stop()
    assert skipped >= 1 and status.skipped >= 1


def test_two_entries_never_run_the_same_operation_at_once(sim):
    steps(sim, steps=3, step_seconds=0.3)
    exp = started(sim, verify(), verify(args={"instanceID": "acme", "includeIndexes": True}))
    try:
        first = threading.Thread(target=exp.poller.maintenance.run, args=(JOB,))
        first.start()
        time.sleep(0.2)
        assert exp.poller.maintenance.run("maintenance/simulator/1") == "skipped"
        first.join(5)
        v = metric_values(scrape(exp))
    finally:
        exp.stop()
    assert v[("mailstore_spe_maintenance_runs_skipped_total", fn())] == 1
    assert v[("mailstore_spe_api_requests_total", fn())] == 1


@pytest.mark.parametrize(
    ("cancel_on_shutdown", "server_state"), [(False, "running"), (True, "cancelled")]
)
def test_shutdown_stops_polling_promptly(sim, cancel_on_shutdown, server_state):
    steps(sim, steps=2, never_finish=True)
    exp = started(sim, verify(cancel_on_shutdown=cancel_on_shutdown))
    tokens = record_tokens(exp)
    results: list[str | None] = []
    run = threading.Thread(target=lambda: results.append(exp.poller.maintenance.run(JOB)))
    run.start()
    deadline = time.monotonic() + 3
    while not exp.operations()["simulator"].running and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # inside a get-status long-poll by now
    began = time.monotonic()
    exp.stop()
    run.join(3)
    assert time.monotonic() - began < 2.0
    assert results == ["stopped"]
    spe = probe(sim)
    assert spe.get_status(tokens[0], -1, 0).status_code == server_state
    spe.cancel_async(tokens[0])  # leave no task behind


def test_only_configured_maintenance_functions_become_callable(sim):
    exp = exporter_for(sim, maintenance=[verify()])
    try:
        client = exp.poller.targets["simulator"].client
        assert "VerifyStores" in client.allowed_functions
        for other in ("VerifyStore", "RetryOpenStores", "CompactStore"):
            assert other not in client.allowed_functions
        with pytest.raises(SPEFunctionNotAllowedError):
            client.call("CompactStore", instanceID="acme", id=1)
    finally:
        exp.stop()
    plain = exporter_for(sim)
    try:
        assert "VerifyStores" not in plain.poller.targets["simulator"].client.allowed_functions
    finally:
        plain.stop()


def test_a_read_that_turns_long_running_is_tracked_the_same_way(sim):
    steps(sim, "GetServiceStatus", steps=2)
    exp = started(sim)
    try:
        assert exp.poller.run_collector("simulator", "service").success
        v = metric_values(scrape(exp))
    finally:
        exp.stop()
    labels = fn("GetServiceStatus", result="succeeded")
    assert v[("mailstore_spe_async_operations_total", labels)] == 1
    assert v[("mailstore_spe_async_operation_duration_seconds_count", fn("GetServiceStatus"))] == 1


def test_deadline_holds_when_get_status_hangs_and_ends_in_cancel_async(sim):
    """Issue 13 B7: a get-status that never answers must not outlast the deadline (read
    timeout 5 s here, deadline 1 s), and the run ends in cancel-async, not "failed"."""
    steps(sim, steps=2, never_finish=True)
    exp = started(sim, verify(deadline="1s"))
    tokens = record_tokens(exp)
    sim.state.set_fault("get-status", "hang", seconds=8)
    try:
        began = time.monotonic()
        result = exp.poller.maintenance.run(JOB)
        took = time.monotonic() - began
        (status,) = exp.operations()["simulator"].tasks
    finally:
        sim.state.clear_faults("get-status")
        exp.stop()
    assert result == "timeout", status.last_error
    assert took < 3.5
    assert "cancel-async was sent" in status.last_error
    assert probe(sim).get_status(tokens[0], -1, 0).status_code == "cancelled"
