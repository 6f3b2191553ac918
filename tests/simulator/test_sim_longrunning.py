"""Long-running tasks: token, status versions, long-poll, final result, cancel, expiry."""

from __future__ import annotations

import itertools
import time

from exporter.simulator import DEFAULT_SCENARIO, Simulator, apply_variant, load_scenario

from .conftest import SimApi, decode


def _start(api: SimApi, **fault: object) -> dict:
    api.sim.state.set_fault("GetStores", "long_running", **fault)
    env = api.invoke("GetStores", instanceID="acme", includeSize="true")
    assert env["statusCode"] == "running" and env["token"].startswith("sa")
    assert env["result"] is None and env["percentProgress"] == 0
    return env


def _poll(api: SimApi, token: str, last: int, timeout_ms: int = 2000) -> dict:
    resp = api.get_status(token, last, timeout_ms)
    assert resp.status_code == 200
    return decode(resp)


def test_versions_advance_and_final_status_holds_the_real_result(sim_api: SimApi) -> None:
    first = _start(sim_api, steps=3, step_seconds=0.1)
    seen, env = [first["statusVersion"]], first
    while env["statusCode"] == "running":
        env = _poll(sim_api, first["token"], env["statusVersion"])
        seen.append(env["statusVersion"])
    assert seen == sorted(seen) and len(set(seen)) == len(seen) >= 3
    assert env["statusCode"] == "succeeded" and env["token"] is None
    assert [s["id"] for s in env["result"]] == [1, 2, 3]  # acme's stores


def test_long_poll_waits_for_news_then_answers(sim_api: SimApi) -> None:
    first = _start(sim_api, steps=2, step_seconds=0.6)
    began = time.monotonic()
    env = _poll(sim_api, first["token"], first["statusVersion"], timeout_ms=5000)
    waited = time.monotonic() - began
    assert env["statusVersion"] > first["statusVersion"]
    assert 0.4 < waited < 2.0  # waited for the next step, not for the full timeout


def test_long_poll_times_out_repeating_the_last_status(sim_api: SimApi) -> None:
    first = _start(sim_api, steps=2, step_seconds=30)
    began = time.monotonic()
    env = _poll(sim_api, first["token"], first["statusVersion"], timeout_ms=300)
    assert 0.25 < time.monotonic() - began < 1.5
    assert env["statusVersion"] == first["statusVersion"] and env["statusCode"] == "running"


def test_old_version_is_answered_at_once(sim_api: SimApi) -> None:
    first = _start(sim_api, steps=2, step_seconds=30)
    began = time.monotonic()
    env = _poll(sim_api, first["token"], -1, timeout_ms=5000)
    assert time.monotonic() - began < 1.0
    assert env["statusVersion"] == first["statusVersion"]


def test_failed_outcome(sim_api: SimApi) -> None:
    first = _start(
        sim_api, steps=1, step_seconds=0.05, outcome="failed", error_message="Store is locked."
    )
    env = _poll(sim_api, first["token"], first["statusVersion"])
    assert env["statusCode"] == "failed" and env["error"]["message"] == "Store is locked."


def test_cancel_ends_the_task_with_the_configured_code(sim_api: SimApi) -> None:
    first = _start(sim_api, steps=5, step_seconds=30)
    cancel = sim_api.post("/api/cancel-async", data={"token": first["token"]})
    assert cancel.status_code == 200 and decode(cancel)["statusCode"] == "succeeded"
    env = _poll(sim_api, first["token"], first["statusVersion"])
    assert env["statusCode"] == "cancelled" and env["statusVersion"] > first["statusVersion"]


def test_never_finish_keeps_running(sim_api: SimApi) -> None:
    first = _start(sim_api, steps=2, step_seconds=0.05, never_finish=True)
    time.sleep(0.3)
    env = _poll(sim_api, first["token"], -1, timeout_ms=0)
    assert env["statusCode"] == "running" and env["statusVersion"] > first["statusVersion"]


def _all_statuses(api: SimApi, **fault: object) -> list[dict]:
    first = _start(api, **fault)
    envs = [first]
    while envs[-1]["statusCode"] == "running":
        envs.append(_poll(api, first["token"], envs[-1]["statusVersion"]))
    return envs


def test_vendor_shape_is_the_default() -> None:
    """As in the vendor's example: versions jump, no progress, no text, new log lines."""
    with Simulator(load_scenario(DEFAULT_SCENARIO)) as sim:
        envs = _all_statuses(SimApi(sim), steps=3, step_seconds=0.05)
    running, final = envs[:-1], envs[-1]
    versions = [e["statusVersion"] for e in envs]
    assert versions[0] == 3 and versions[1] == 9  # the example's first two versions
    assert all(b - a > 1 for a, b in itertools.pairwise(versions))  # jumps, not +1
    assert all(e["percentProgress"] == 0 and e["statusText"] is None for e in running)
    assert "Starting GetStores" in running[0]["logOutput"]
    assert all(e["logOutput"].endswith("\r\n") for e in running)
    assert len({e["logOutput"] for e in running}) == len(running)  # each status: new lines
    assert final["statusCode"] == "succeeded" and final["percentProgress"] is None
    assert final["logOutput"] is None and final["token"] is None


def test_progressing_shape_is_a_variant() -> None:
    scenario = apply_variant(load_scenario(DEFAULT_SCENARIO), "progressing-long-running")
    with Simulator(scenario) as sim:
        envs = _all_statuses(SimApi(sim), steps=2, step_seconds=0.05)
    assert [e["statusVersion"] for e in envs] == [1, 2, 4]
    assert [e["percentProgress"] for e in envs] == [0, 50, None]
    assert envs[1]["statusText"] == "GetStores: step 1 of 2"


def test_unknown_token_gives_404(api: SimApi) -> None:
    assert api.get_status("sa" + "0" * 32, 0).status_code == 404
    assert api.post("/api/cancel-async", data={"token": "nope"}).status_code == 404


def test_finished_tokens_expire() -> None:
    scenario = load_scenario(DEFAULT_SCENARIO)
    scenario.limits.task_expiry_seconds = 0.2
    with Simulator(scenario) as sim:
        api = SimApi(sim)
        first = _start(api, steps=1, step_seconds=0.05)
        assert _poll(api, first["token"], first["statusVersion"])["statusCode"] == "succeeded"
        time.sleep(0.5)
        assert api.get_status(first["token"], -1).status_code == 404


def test_maintenance_functions_are_long_running_by_default(sim_api: SimApi) -> None:
    for function, args in [
        ("VerifyStore", {"id": "1", "includeIndexes": "true"}),
        ("VerifyStores", {"includeIndexes": "false"}),
        ("CompactStore", {"id": "2"}),
        ("RefreshAllStoreStatistics", {}),
        ("RetryOpenStores", {}),
    ]:
        env = sim_api.invoke(function, instanceID="acme", **args)
        assert env["statusCode"] == "running", function
    # A bad store id fails at the end of the task, with the function's own error.
    env = sim_api.invoke("VerifyStore", instanceID="acme", id="99", includeIndexes="true")
    final = _poll(sim_api, env["token"], env["statusVersion"], timeout_ms=5000)
    while final["statusCode"] == "running":
        final = _poll(sim_api, env["token"], final["statusVersion"], timeout_ms=5000)
    assert final["statusCode"] == "failed" and "99" in final["error"]["message"]
