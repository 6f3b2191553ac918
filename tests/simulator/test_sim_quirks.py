"""The real server's quirks (spe-api-notes §1.9, §2.2, §3, §4)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from exporter.simulator import DEFAULT_SCENARIO, Simulator, load_scenario

from .conftest import PASSWORD, USER, SimApi

NO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")


def _window(api: SimApi, hours: float) -> tuple[str, str]:
    """A window ending now, in UTC wall-clock text."""
    end = datetime.fromtimestamp(int(api.sim.state.now()), tz=UTC)
    start = end - timedelta(hours=hours)
    return start.strftime("%Y-%m-%dT%H:%M:%S"), end.strftime("%Y-%m-%dT%H:%M:%S")


def _worker(api: SimApi, instance: str = "acme", hours: float = 24, **extra: str):
    start, end = _window(api, hours)
    return api.invoke(
        "GetWorkerResults",
        instanceID=instance,
        fromIncluding=start,
        toExcluding=end,
        timeZoneID="UTC",
        **extra,
    )


def test_worker_results_need_capital_d_time_zone_id(api: SimApi) -> None:
    start, end = _window(api, 24)
    message = api.error(
        "GetWorkerResults",
        instanceID="acme",
        fromIncluding=start,
        toExcluding=end,
        timeZoneId="UTC",
    )
    assert "timeZoneID" in message
    assert _worker(api)["statusCode"] == "succeeded"


def test_job_results_need_lower_case_d_time_zone_id(api: SimApi) -> None:
    start, end = _window(api, 72)
    message = api.error(
        "GetJobResults", instanceID="acme", fromIncluding=start, toExcluding=end, timeZoneID="UTC"
    )
    assert "timeZoneId" in message
    rows = api.result(
        "GetJobResults", instanceID="acme", fromIncluding=start, toExcluding=end, timeZoneId="UTC"
    )
    assert rows and set(rows[0]) == {
        "jobResultId",
        "jobId",
        "action",
        "startTime",
        "completeTime",
        "result",
    }
    completes = [r["completeTime"] for r in rows]
    assert completes == sorted(completes, reverse=True)  # newest first, as captured
    only = api.result(
        "GetJobResults",
        instanceID="acme",
        fromIncluding=start,
        toExcluding=end,
        timeZoneId="UTC",
        jobId="1",
    )
    assert {r["jobId"] for r in only} == {1}


def test_worker_rows_use_profile_id_and_temporary_runs_have_none(api: SimApi) -> None:
    rows = _worker(api, hours=48)["result"]
    profile_rows = [r for r in rows if "profileId" in r]
    temp_rows = [r for r in rows if "profileId" not in r]
    assert profile_rows and temp_rows
    assert all("profileID" not in r for r in rows)
    assert all("profileName" not in r for r in temp_rows)
    assert {r["profileId"] for r in profile_rows} == {33, 34}  # 35 is manual: never runs
    assert temp_rows[0]["machineName"] == "SPE.EXAMPLE.COM"  # the CAS host
    for r in rows:
        assert NO_Z.match(r["startTime"]) and NO_Z.match(r["completeTime"])


def test_worker_rows_are_not_sorted_by_time(api: SimApi) -> None:
    completes = [r["completeTime"] for r in _worker(api, hours=48)["result"]]
    assert completes != sorted(completes) and completes != sorted(completes, reverse=True)


def test_worker_result_window_is_from_including_to_excluding(api: SimApi) -> None:
    rows = _worker(api, hours=48)["result"]
    some = next(r for r in rows if r.get("profileId") == 33)
    run = {"instanceID": "acme", "timeZoneID": "UTC", "profileID": "33"}
    inside = api.result(
        "GetWorkerResults",
        fromIncluding=some["completeTime"],
        toExcluding=some["completeTime"][:-2] + "01",
        **run,
    )
    assert [r["id"] for r in inside] == [some["id"]]
    assert (
        api.result(
            "GetWorkerResults",
            fromIncluding=some["startTime"],
            toExcluding=some["completeTime"],
            **run,
        )
        == []
    )


def test_result_times_are_in_the_requested_zone(api: SimApi) -> None:
    start, end = "2026-01-10T00:00:00", "2026-01-10T06:00:00"
    base = {"instanceID": "acme", "profileID": "33", "fromIncluding": start, "toExcluding": end}
    utc = api.result("GetWorkerResults", timeZoneID="UTC", **base)
    berlin = api.result("GetWorkerResults", timeZoneID="W. Europe Standard Time", **base)
    local = api.result("GetWorkerResults", timeZoneID="$Local", **base)
    by_id = {r["id"]: r["startTime"] for r in utc}
    # Same wall-clock window, one hour apart in absolute time (CET = UTC+1 in January).
    shifted = {r["id"]: r["startTime"] for r in berlin}
    assert sorted(by_id.values()) == sorted(shifted.values())
    assert set(by_id) != set(shifted)
    assert local == berlin  # $Local is the scenario's server zone
    assert "was not found" in api.error("GetWorkerResults", timeZoneID="Mars/Olympus", **base)


@pytest.mark.parametrize(
    "bad",
    ["2026-01-10T00:00:00Z", "2026-01-10T00:00:00.000", "2026-01-10T00:00:00+01:00", "yesterday"],
)
def test_datetime_with_z_or_fraction_is_rejected(api: SimApi, bad: str) -> None:
    message = api.error(
        "GetWorkerResults",
        instanceID="acme",
        fromIncluding=bad,
        toExcluding="2026-01-11T00:00:00",
        timeZoneID="UTC",
    )
    assert message == "String was not recognized as a valid DateTime."


def test_wide_window_with_many_rows_fails(api: SimApi) -> None:
    base = {"instanceID": "acme", "timeZoneID": "UTC", "toExcluding": "2026-03-01T00:00:00"}
    message = api.error("GetWorkerResults", fromIncluding="2026-01-01T00:00:00", **base)
    assert message == "Nullable object must have a value."
    # Within the limit (31 days) the same instance answers.
    assert api.result("GetWorkerResults", fromIncluding="2026-02-01T00:00:00", **base)
    # A wide window with few rows (a 4-hourly profile only) still answers.
    few = api.result(
        "GetWorkerResults",
        instanceID="acme",
        timeZoneID="UTC",
        fromIncluding="2026-01-01T00:00:00",
        toExcluding="2026-02-10T00:00:00",
        profileID="34",
    )
    assert few and all(r["profileId"] == 34 for r in few)


def test_profile_id_zero_and_empty_user_name_are_out_of_range(api: SimApi) -> None:
    out_of_range = "Specified argument was out of the range of valid values"
    assert out_of_range in _worker(api, profileID="0")["error"]["message"]
    assert out_of_range in _worker(api, userName="")["error"]["message"]
    by_user = _worker(api, hours=48, userName="$archiveadmin")["result"]
    assert by_user and {r["userName"] for r in by_user} == {"$archiveadmin"}


@pytest.mark.parametrize(
    "function", ["GetUsers", "GetJobs", "GetCredentials", "GetComplianceConfiguration"]
)
def test_service_provider_access_off_blocks_non_store_functions(api: SimApi, function: str):
    assert "Service provider access" in api.error(function, instanceID="initech")


def test_service_provider_access_off_allows_only_store_functions(api: SimApi) -> None:
    """The vendor's rule: every instanceID function but the store/index ones is refused
    (statistics too, by default: access_off_refuses_statistics)."""
    assert api.result("GetStores", instanceID="initech", includeSize="true")
    assert api.result("GetArchiveAdminEnabled", instanceID="initech") is False
    assert api.result("GetArchiveAdminEnabled", instanceID="acme") is True
    for function in ("GetInstanceStatistics", "GetInstanceProcessLiveStatistics", "GetUsers"):
        assert api.error(function, instanceID="initech") == (
            "Service provider access is not enabled for instance 'initech'."
        ), function
    assert "Service provider access" in api.error("GetProfiles", instanceID="initech", raw="true")


def test_access_off_refuses_statistics_is_a_scenario_switch() -> None:
    scenario = load_scenario(DEFAULT_SCENARIO)
    assert scenario.access_off_refuses_statistics is True  # the default reading
    scenario.access_off_refuses_statistics = False
    with Simulator(scenario, username=USER, password=PASSWORD) as sim:
        api = SimApi(sim)
        try:
            assert api.result("GetInstanceStatistics", instanceID="initech")
            assert api.result("GetInstanceProcessLiveStatistics", instanceID="initech")
            assert "Service provider access" in api.error("GetUsers", instanceID="initech")
        finally:
            api.close()


def test_stopped_and_unknown_instances_fail(api: SimApi) -> None:
    assert "not running" in api.error("GetStores", instanceID="umbrella", includeSize="true")
    assert "not running" in api.error("GetInstanceStatistics", instanceID="umbrella")
    assert "does not exist" in api.error("GetStores", instanceID="nobody", includeSize="true")
    # The configuration is kept by the management server: readable while stopped (assumed).
    assert api.result("GetInstanceConfiguration", instanceID="umbrella")["instanceID"]
