"""Fault injection: every kind, scoping to a function or "*", ``times``, and prompt stop."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from exporter.simulator import DEFAULT_SCENARIO, FaultError, Simulator, load_scenario

from .conftest import SimApi, decode


def test_http_status(sim_api: SimApi) -> None:
    sim_api.sim.state.set_fault("GetStores", "http_status", status=503, body="busy")
    resp = sim_api.post("/api/invoke/GetStores", data={"instanceID": "acme"})
    assert resp.status_code == 503 and resp.text == "busy"
    assert sim_api.result("Ping") is None  # other functions are unaffected


def test_invalid_json(sim_api: SimApi) -> None:
    sim_api.sim.state.set_fault("Ping", "invalid_json")
    resp = sim_api.post("/api/invoke/Ping")
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        json.loads(resp.content.decode("utf-8-sig"))


def test_truncated_with_honest_content_length(sim_api: SimApi) -> None:
    sim_api.sim.state.set_fault("GetServiceStatus", "truncated", keep_bytes=30)
    resp = sim_api.post("/api/invoke/GetServiceStatus")
    assert resp.status_code == 200 and len(resp.content) == 30
    assert resp.content.startswith(b'\xef\xbb\xbf{"error":null')
    with pytest.raises(ValueError):
        json.loads(resp.content.decode("utf-8-sig"))


def test_truncated_with_full_content_length_breaks_the_read(sim_api: SimApi) -> None:
    sim_api.sim.state.set_fault("GetServiceStatus", "truncated", content_length="full")
    with pytest.raises(requests.exceptions.RequestException):
        sim_api.post("/api/invoke/GetServiceStatus")


def test_drop_connection(sim_api: SimApi) -> None:
    sim_api.sim.state.set_fault("Ping", "drop_connection")
    with pytest.raises(requests.exceptions.ConnectionError):
        sim_api.post("/api/invoke/Ping")


def test_api_error(sim_api: SimApi) -> None:
    sim_api.sim.state.set_fault("GetStores", "api_error", message="Boom.", details="trace")
    env = sim_api.invoke("GetStores", instanceID="acme")
    assert env["statusCode"] == "failed" and env["error"] == {
        "message": "Boom.",
        "details": "trace",
    }


def test_latency_and_star_and_times(sim_api: SimApi) -> None:
    sim_api.sim.state.set_fault("*", "latency", seconds=0.3, times=1)
    began = time.monotonic()
    sim_api.result("Ping")
    assert time.monotonic() - began >= 0.3
    began = time.monotonic()
    sim_api.result("Ping")  # the fault was used up
    assert time.monotonic() - began < 0.3


def test_star_applies_to_low_level_endpoints_and_clear_faults(sim_api: SimApi) -> None:
    sim_api.sim.state.set_fault("*", "http_status", status=500)
    assert sim_api.post("/api/get-metadata").status_code == 500
    sim_api.sim.state.clear_faults()
    assert sim_api.post("/api/get-metadata").status_code == 200


def test_scenario_latency_per_function() -> None:
    scenario = load_scenario(DEFAULT_SCENARIO)
    scenario.latency = {"GetStores": 0.3}
    with Simulator(scenario) as sim:
        api = SimApi(sim)
        began = time.monotonic()
        api.result("Ping")
        assert time.monotonic() - began < 0.3
        api.result("GetStores", instanceID="acme")
        assert time.monotonic() - began >= 0.3


def test_scenario_faults_are_active_from_the_start() -> None:
    data = {
        "instance_hosts": [{"name": "ih01"}],
        "instances": [{"id": "one", "host": "ih01"}],
        "faults": [{"function": "Ping", "kind": "api_error", "message": "from scenario"}],
    }
    with Simulator(load_scenario(data)) as sim:
        assert SimApi(sim).error("Ping") == "from scenario"


def test_invalid_faults_are_rejected(sim_api: SimApi) -> None:
    state = sim_api.sim.state
    with pytest.raises(FaultError, match="unknown fault kind"):
        state.set_fault("Ping", "explode")
    with pytest.raises(FaultError, match="seconds"):
        state.set_fault("Ping", "latency")
    with pytest.raises(FaultError, match="outcome"):
        state.set_fault("Ping", "long_running", outcome="maybe")


def test_hang_does_not_block_others_and_stop_is_prompt() -> None:
    sim = Simulator(load_scenario(DEFAULT_SCENARIO)).start()
    api = SimApi(sim)
    sim.state.set_fault("GetStores", "hang", seconds=60)
    errors: list[BaseException] = []

    def hang() -> None:
        try:
            SimApi(sim).post("/api/invoke/GetStores", data={"instanceID": "acme"}, timeout=30)
        except requests.exceptions.RequestException as exc:
            errors.append(exc)

    thread = threading.Thread(target=hang)
    thread.start()
    time.sleep(0.2)
    began = time.monotonic()
    assert api.result("Ping") is None  # answered while the other request hangs
    assert time.monotonic() - began < 1.0
    # An idle keep-alive connection and a long-poll are open too.
    first = api.invoke("VerifyStores", instanceID="acme", includeIndexes="true")
    poller = threading.Thread(
        target=lambda: _swallow(lambda: api.get_status(first["token"], 99, 20000))
    )
    poller.start()
    time.sleep(0.1)
    began = time.monotonic()
    sim.stop()
    assert time.monotonic() - began < 2.0
    thread.join(5)
    poller.join(5)
    assert not thread.is_alive() and not poller.is_alive()
    assert errors  # the hanging request was cut off, not answered


def _swallow(fn) -> None:
    try:
        fn()
    except requests.exceptions.RequestException:
        pass


def test_control_api_faults_roundtrip(sim_api: SimApi) -> None:
    resp = sim_api.control(action="set_fault", function="Ping", kind="api_error", message="x")
    assert resp.status_code == 200 and resp.json() == {"ok": True}
    assert sim_api.error("Ping") == "x"
    assert sim_api.control(action="clear_faults", function="Ping").status_code == 200
    assert decode(sim_api.post("/api/invoke/Ping"))["statusCode"] == "succeeded"
    bad = sim_api.control(action="set_fault", function="Ping", kind="nope")
    assert bad.status_code == 400 and "unknown fault kind" in bad.json()["error"]
