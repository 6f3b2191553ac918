"""Faults beyond one broken call: unexpected shapes, unknown enum values, huge answers,
a token that never finishes, SPE down at start, flapping, data expiry during a fault."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

import exporter.spe.client as spe_client
from exporter.collectors import ALL_COLLECTORS as DECLARED_COLLECTORS

from .faultkit import (
    ALL_COLLECTORS,
    BOM,
    FAULTY,
    HEALTHY,
    RUNNING,
    Raw,
    failures,
    free_port,
    k,
    make_exporter,
    make_simulator,
    metrics,
    series_of,
    success,
    target_spec,
    thread_census,
    up,
)

MB = 1024 * 1024


@pytest.fixture
def via_proxy(proxy, certs, sim_a, sim_b):
    """An exporter whose spe1 reaches sim_a through the rewriting proxy."""
    exp = make_exporter(
        target_spec(proxy.url, tls={"ca_file": certs["good"].certfile}),
        target_spec(sim_b.url, tls={"ca_file": sim_b.ca_file}),
        sim_a.state.now,
    )
    exp.poller.run_all_once()
    yield exp
    exp.stop()


def _each_result(mutate):
    """An override applying ``mutate`` to the result (or to each row of a list result)."""

    def override(envelope: dict[str, Any]) -> dict[str, Any]:
        result = envelope["result"]
        for row in result if isinstance(result, list) else [result]:
            mutate(row)
        return envelope

    return override


def _set_result(value):
    def override(envelope):
        envelope["result"] = value
        return envelope

    return override


def _set_envelope(key, value):
    def override(envelope):
        envelope[key] = value
        return envelope

    return override


SHAPES = [
    # (id, function, override, collector, error text, counted (function, reason) or None)
    ("word-for-number", "GetInstanceStatistics",
     _each_result(lambda r: r.update(totalSizeMB="881094 MB")), "statistics",
     "result.totalSizeMB: expected a number, got str '881094 MB'",
     ("GetInstanceStatistics", "invalid_response")),
    ("missing-field", "GetStores",
     _each_result(lambda r: r.pop("requestedState")), "stores",
     "result[0].requestedState: missing, expected a string", ("GetStores", "invalid_response")),
    ("null-list", "GetServiceStatus",
     _each_result(lambda r: r.update(serverInfos=None)), "service",
     "result.serverInfos: null, expected a list", ("GetServiceStatus", "invalid_response")),
    ("null-result", "GetJobs", _set_result(None), "jobs",
     "GetJobs: result: expected a list, got null", ("GetJobs", "invalid_response")),
    ("non-string-statusCode", "GetCredentials", _set_envelope("statusCode", 200),
     "credentials", "non-string 'statusCode'", ("GetCredentials", "invalid_response")),
    ("unknown-statusCode", "GetComplianceConfiguration", _set_envelope("statusCode", "pending"),
     "compliance", "call ended with status 'pending'",
     ("GetComplianceConfiguration", "api_error")),
]


@pytest.mark.parametrize("shape", SHAPES, ids=[s[0] for s in SHAPES])
def test_unexpected_shapes_fail_one_collector_cleanly(shape, via_proxy, proxy, logs):
    _, function, override, collector, text, counted = shape
    exp = via_proxy
    logs.clear()
    proxy.overrides[function] = override
    for _ in range(2):
        exp.poller.run_collector(FAULTY, collector)
    v = metrics(exp)
    assert success(v, collector) == 0
    assert [c for c in ALL_COLLECTORS if success(v, c) == 0] == [collector]
    assert all(success(v, c, HEALTHY) == 1 for c in ALL_COLLECTORS)
    # Envelope problems and result shapes the collector rejects are both counted as
    # failures of the call (invalid_response), once per call.
    calls = 1 if collector == "service" else len(RUNNING)
    assert failures(v) == ({counted: 2 * calls} if counted else {})
    [line] = logs.health("collector failed")
    assert line.collector == collector and text in line.error, line.error
    assert logs.errors() == []  # a clean rejection, no "internal error"
    proxy.overrides.clear()
    exp.poller.run_collector(FAULTY, collector)
    assert success(metrics(exp), collector) == 1
    assert len(logs.health("collector recovered")) == 1


def test_unknown_enum_values_are_exported_as_their_own_state(via_proxy, proxy, sim_a):
    exp = via_proxy

    def safe_mode(envelope):
        for row in envelope["result"]:
            if row["instanceID"] == "acme":
                row["status"] = "safeMode"
        return envelope

    proxy.overrides["GetInstances"] = safe_mode
    sim_a.state.set_store_flags("globex", 2, requested_state="archived")
    try:
        exp.poller.run_collector(FAULTY, "instances")
        exp.poller.run_collector(FAULTY, "stores")
        v = metrics(exp)
        statuses = {
            dict(labels)["status"]: value
            for (_, labels), value in series_of(v, "mailstore_spe_instance_status").items()
            if ("instance_id", "acme") in labels
        }
        assert statuses == {
            "safeMode": 1, "running": 0, "stopped": 0, "starting": 0, "stopping": 0, "frozen": 0
        }
        states = {
            dict(labels)["state"]: value
            for (_, labels), value in series_of(v, "mailstore_spe_store_state").items()
            if ("instance_id", "globex") in labels and ("store_id", "2") in labels
        }
        assert states == {
            "archived": 1, "current": 0, "normal": 0, "writeProtected": 0, "disabled": 0
        }
        assert success(v, "instances") == 1 and success(v, "stores") == 1
        assert failures(v) == {}
    finally:
        sim_a.state.set_store_flags("globex", 2, requested_state="current")


def _blocks(total: int, block: bytes = b" " * MB) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield block
        sent += len(block)


def test_a_50_mb_answer_below_the_limit_is_read(via_proxy, proxy):
    # An unknown 50 MB field (prepared beforehand: the proxy answers at once).
    result = {"version": "25.3.1.23021", "padding": "x" * (50 * MB)}
    body = BOM + json.dumps({"statusCode": "succeeded", "result": result}).encode()
    proxy.overrides["GetEnvironmentInfo"] = lambda envelope: Raw(body=body)
    started = time.monotonic()
    via_proxy.poller.run_collector(FAULTY, "environment")
    assert time.monotonic() - started < 5
    v = metrics(via_proxy)
    assert success(v, "environment") == 1
    assert failures(v) == {}
    assert v[("mailstore_spe_info", k(version="25.3.1.23021", web_client_version="",
                                      server_name="", licensee_name="", licensee_id=""))] == 1


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "no-length"])
def test_an_answer_above_the_size_limit_fails_without_reading_it_all(
    declared, via_proxy, proxy, logs, monkeypatch
):
    if declared:  # 80 MB announced: refused from the header, above the default 64 MB
        size, limit = 80 * MB, spe_client.MAX_RESPONSE_BYTES
        raw = Raw(length=size, chunks=lambda: _blocks(size))
    else:  # no Content-Length: stopped after the (lowered) limit, not at the 200 MB end
        limit = MB
        monkeypatch.setattr(spe_client, "MAX_RESPONSE_BYTES", limit)
        for client in (rt.client for rt in via_proxy.poller.targets.values()):
            client.max_response_bytes = limit
        raw = Raw(length=None, chunks=lambda: _blocks(200 * MB))
    proxy.overrides["GetEnvironmentInfo"] = lambda envelope: raw
    logs.clear()
    for _ in range(2):
        via_proxy.poller.run_collector(FAULTY, "environment")
    v = metrics(via_proxy)
    assert success(v, "environment") == 0
    assert failures(v) == {("GetEnvironmentInfo", "invalid_response"): 2}
    [line] = logs.health("collector failed")
    assert f"larger than the limit of {limit} bytes" in line.error
    proxy.overrides.clear()
    via_proxy.poller.run_collector(FAULTY, "environment")
    assert success(metrics(via_proxy), "environment") == 1


@pytest.fixture
def direct(sim_a, sim_b):
    exp = make_exporter(
        target_spec(sim_a.url, tls={"ca_file": sim_a.ca_file}),
        target_spec(sim_b.url, tls={"ca_file": sim_b.ca_file}),
        sim_a.state.now,
    )
    exp.poller.run_all_once()
    yield exp
    exp.stop()


def test_a_token_that_never_finishes_is_cancelled(direct, sim_a, logs):
    sim_a.state.set_fault(
        "GetInstanceStatistics", "long_running", steps=3, step_seconds=0.1, never_finish=True
    )
    threads_before, _ = thread_census()
    logs.clear()
    for _ in range(2):
        direct.poller.run_collector(FAULTY, "statistics")
    v = metrics(direct)
    runs = 2 * len(RUNNING)
    assert success(v, "statistics") == 0
    assert failures(v) == {("GetInstanceStatistics", "async_timeout"): runs}
    fn = {"function": "GetInstanceStatistics"}
    assert v[("mailstore_spe_async_operations_total", k(result="timeout", **fn))] == runs
    assert v[("mailstore_spe_async_operations_in_progress", k(**fn))] == 0
    # cancel-async reached SPE for every abandoned task
    tasks = list(sim_a.state.tasks._tasks.values())
    assert len(tasks) == runs and all(t.cancelled_at is not None for t in tasks)
    [line] = logs.health("collector failed")
    assert "did not finish within its deadline of 1 s; cancel-async was sent" in line.error
    assert thread_census()[0] <= threads_before + 1
    sim_a.state.clear_faults()
    direct.poller.run_collector(FAULTY, "statistics")
    assert success(metrics(direct), "statistics") == 1
    assert len(logs.health("collector recovered")) == 1


def test_spe_down_at_start_and_back_later(certs, sim_b, logs):
    port, cert = free_port(), certs["good"]
    exp = make_exporter(
        target_spec(f"https://127.0.0.1:{port}", tls={"ca_file": cert.certfile}),
        target_spec(sim_b.url, tls={"ca_file": sim_b.ca_file}),
        sim_b.state.now,
    )
    sim = None
    try:
        threads_before, _ = thread_census()
        for _ in range(3):
            exp.poller.run_all_once()
        v = metrics(exp)
        assert up(v) == 0 and up(v, HEALTHY) == 1
        assert all(success(v, c) == 0 for c in ALL_COLLECTORS)
        # No instance list yet: each per-instance collector asks GetInstances itself.
        per_instance = sum(cls.per_instance for cls in DECLARED_COLLECTORS.values())
        assert failures(v) == {
            ("GetEnvironmentInfo", "connection"): 3,
            ("GetServiceStatus", "connection"): 3,
            ("GetInstances", "connection"): 3 * (1 + per_instance),
        }
        assert logs.by_collector("collector failed") == dict.fromkeys(ALL_COLLECTORS, 1)
        assert thread_census()[0] <= threads_before + 1
        sim = make_simulator(port, cert).start()
        exp.poller.run_all_once()
        v = metrics(exp)
        assert up(v) == 1 and all(success(v, c) == 1 for c in ALL_COLLECTORS)
        assert logs.by_collector("collector recovered") == dict.fromkeys(ALL_COLLECTORS, 1)
        assert logs.errors() == []
    finally:
        exp.stop()
        if sim is not None:
            sim.stop()


def test_flapping_spe_logs_each_change_once(direct, sim_a, logs):
    logs.clear()
    outcomes = []
    # fail, fail, ok, fail, ok, ok: a fault firing a set number of times, twice
    for times in (2, 1):
        sim_a.state.set_fault("GetServiceStatus", "http_status", status=503, times=times)
        for _ in range(times + 1):
            direct.poller.run_collector(FAULTY, "service")
            outcomes.append(up(metrics(direct)))
    direct.poller.run_collector(FAULTY, "service")
    outcomes.append(up(metrics(direct)))
    assert outcomes == [0, 0, 1, 0, 1, 1]
    v = metrics(direct)
    assert failures(v) == {("GetServiceStatus", "http_5xx"): 3}
    changes = [
        r.getMessage() for r in logs.records
        if r.name == "exporter.health" and getattr(r, "target", None) == FAULTY
    ]
    assert changes == ["collector failed", "collector recovered"] * 2


def test_data_is_kept_while_failing_until_max_data_age(direct, sim_a):
    before = series_of(metrics(direct), "mailstore_spe_store_messages")
    assert before
    sim_a.state.set_fault("GetStores", "http_status", status=503)
    sim_a.state.advance(10 * 60)  # stores: 5 min interval, max_data_age 15 min
    direct.poller.run_collector(FAULTY, "stores")
    direct.poller.expire()
    assert series_of(metrics(direct), "mailstore_spe_store_messages") == before
    sim_a.state.advance(6 * 60)
    direct.poller.run_collector(FAULTY, "stores")
    direct.poller.run_collector(HEALTHY, "stores")
    direct.poller.expire()
    v = metrics(direct)
    assert series_of(v, "mailstore_spe_store_messages") == {}
    assert series_of(v, "mailstore_spe_store_messages", HEALTHY)  # spe2 keeps its own
    sim_a.state.clear_faults()
    direct.poller.run_collector(FAULTY, "stores")
    # back (the archives grew meanwhile: same series, newer values)
    assert series_of(metrics(direct), "mailstore_spe_store_messages").keys() == before.keys()
