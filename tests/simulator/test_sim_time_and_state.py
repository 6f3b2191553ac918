"""Simulated time and run-time control: growth, counters, runs on schedule, instance control."""

from __future__ import annotations

from datetime import UTC, datetime

from .conftest import SimApi


def _fmt(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _messages(api: SimApi, instance: str) -> int:
    return api.result("GetInstanceStatistics", instanceID=instance)["numberOfMessages"]


def test_advance_grows_healthy_archive_but_not_the_stalled_one(sim_api: SimApi) -> None:
    sim_api.sim.state.clock.freeze()
    acme, globex = _messages(sim_api, "acme"), _messages(sim_api, "globex")
    stores_before = sum(
        s["statisticsCount"]
        for s in sim_api.result("GetStores", instanceID="acme", includeSize="true")
    )
    sim_api.sim.state.advance(3600)
    assert _messages(sim_api, "acme") == acme + 120  # messages_per_hour: 120
    assert _messages(sim_api, "globex") == globex  # rate 0: stalled
    stores = sim_api.result("GetStores", instanceID="acme", includeSize="true")
    assert sum(s["statisticsCount"] for s in stores) == stores_before + 120
    assert stores[2]["statisticsCount"] == 3123896 + 120  # the "current" store grows


def test_advance_grows_process_counters(sim_api: SimApi) -> None:
    sim_api.sim.state.clock.freeze()
    before = sim_api.result("GetInstanceProcessLiveStatistics", instanceID="acme")
    sim_api.sim.state.advance(60)
    after = sim_api.result("GetInstanceProcessLiveStatistics", instanceID="acme")
    assert after["timestamp"] == before["timestamp"] + 60_000
    for key in ("totalProcessorMilliseconds", "totalIOReadBytes", "totalMessagesArchived"):
        assert after[key] > before[key], key
    assert after["processUniqueID"] == before["processUniqueID"]


def test_restart_changes_process_id_and_resets_counters(sim_api: SimApi) -> None:
    state = sim_api.sim.state
    before = sim_api.result("GetInstanceProcessLiveStatistics", instanceID="acme")
    state.stop_instance("acme", error="Stopped for maintenance.")
    listed = sim_api.result("GetInstances", instanceFilter="acme")[0]
    assert listed["status"] == "stopped" and listed["startStopError"] == "Stopped for maintenance."
    assert "not running" in sim_api.error("GetStores", instanceID="acme")
    state.start_instance("acme")
    after = sim_api.result("GetInstanceProcessLiveStatistics", instanceID="acme")
    assert after["processUniqueID"] != before["processUniqueID"]
    assert after["totalProcessorMilliseconds"] < before["totalProcessorMilliseconds"]
    assert sim_api.result("GetInstances", instanceFilter="acme")[0]["startStopError"] is None


def test_new_worker_results_appear_with_stable_ids(sim_api: SimApi) -> None:
    state = sim_api.sim.state
    now = state.clock.freeze()
    args = {"instanceID": "globex", "timeZoneID": "UTC"}  # a run every 30 min

    def ids(t_from: float, t_to: float) -> dict[int, dict]:
        rows = sim_api.result(
            "GetWorkerResults", fromIncluding=_fmt(t_from), toExcluding=_fmt(t_to), **args
        )
        return {r["id"]: r for r in rows}

    before = ids(now - 7200, now + 7200)
    assert all(r["result"] == "failed" and r["itemsArchived"] == 0 for r in before.values())
    state.advance(3600)
    after = ids(now - 7200, now + 7200)
    assert set(before) < set(after) and len(after) - len(before) == 2  # two new runs
    assert all(after[i] == before[i] for i in before)  # old rows unchanged
    # Overlapping windows split anywhere give the same rows with the same ids.
    mid = now - 1234
    assert {**ids(now - 7200, mid), **ids(mid, now + 7200)} == after


def test_store_flags_messages_hosts_and_access_at_run_time(sim_api: SimApi) -> None:
    state = sim_api.sim.state
    state.set_store_flags("acme", 1, error="Disk full.", needs_upgrade=True)
    store = sim_api.result("GetStores", instanceID="acme", includeSize="true")[0]
    assert store["error"] == "Disk full." and store["needsUpgrade"] is True
    state.set_store_flags("acme", 1, error=None)
    assert sim_api.result("GetStores", instanceID="acme")[0]["error"] is None

    state.clear_messages()
    state.add_message("warning", "Licence expires soon.")
    assert sim_api.result("GetServiceStatus")["messages"][0]["text"] == "Licence expires soon."

    state.set_instance_host_active("ih01", False)
    host = next(
        s for s in sim_api.result("GetServiceStatus")["serverInfos"] if s["serverName"] == "ih01"
    )
    assert host["active"] is False
    assert "not available" in sim_api.error("GetStores", instanceID="acme")

    state.set_service_provider_access("initech", True)
    assert sim_api.result("GetUsers", instanceID="initech")


def test_add_and_remove_instances(sim_api: SimApi) -> None:
    state = sim_api.sim.state
    state.remove_instance("hooli")
    assert "does not exist" in sim_api.error("GetStores", instanceID="hooli")
    state.add_instance({"id": "newco", "host": "ih02", "stores": [{"id": 1, "name": "s"}]})
    assert sim_api.result("GetStores", instanceID="newco")[0]["name"] == "s"
    ids = [i["instanceID"] for i in sim_api.result("GetInstances", instanceFilter="*")]
    assert "newco" in ids and "hooli" not in ids


def test_password_rotation(sim_api: SimApi) -> None:
    sim_api.sim.state.set_credentials("admin", "rotated")
    assert sim_api.post("/api/invoke/Ping").status_code == 401
    assert sim_api.post("/api/invoke/Ping", auth=("admin", "rotated")).status_code == 200


def test_control_api_actions(sim_api: SimApi) -> None:
    assert sim_api.control(action="stop_instance", instance_id="acme", error="x").json()["ok"]
    assert sim_api.result("GetInstances", instanceFilter="acme")[0]["status"] == "stopped"
    assert sim_api.control(action="start_instance", instance_id="acme").status_code == 200
    before = sim_api.control(action="get_time").json()["now"]
    assert sim_api.control(action="advance", seconds=86400).json()["now"] >= before + 86400
    resp = sim_api.control(
        action="set_store_flags", instance_id="acme", store_id=2, search_indexes_need_rebuild=True
    )
    assert resp.status_code == 200
    assert sim_api.result("GetStores", instanceID="acme")[1]["searchIndexesNeedRebuild"] is True
    assert sim_api.control(action="stop_instance", instance_id="ghost").status_code == 400
    assert sim_api.control(action="nope").status_code == 400
    assert (
        sim_api.post(
            "/_sim/control",
            data="{",
        ).status_code
        == 400
    )
    unauthenticated = sim_api.post("/_sim/control", data="{}", auth=None)
    assert unauthenticated.status_code == 401
    rotated = sim_api.control(action="set_credentials", username="ops", password="new")
    assert rotated.status_code == 200
    assert sim_api.post("/api/invoke/Ping", auth=("ops", "new")).status_code == 200
