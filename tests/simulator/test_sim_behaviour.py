"""Scenario switches for SPE behaviour nobody has verified: each reading, both ways."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exporter.simulator import (
    DEFAULT_SCENARIO,
    VARIANTS,
    ScenarioError,
    Simulator,
    apply_variant,
    load_scenario,
)

from .conftest import PASSWORD, USER, SimApi

NULLABLE = "Nullable object must have a value."


@pytest.fixture
def variant_api(request) -> Iterator[SimApi]:
    scenario = apply_variant(load_scenario(DEFAULT_SCENARIO), request.param)
    with Simulator(scenario, username=USER, password=PASSWORD) as sim:
        sim.state.clock.freeze()
        api = SimApi(sim)
        yield api
        api.close()


def _automatic_values(api: SimApi) -> list[object]:
    rows = api.result("GetProfiles", instanceID="acme", raw="true")
    return [row["serverSideExecution"]["automatic"] for row in rows]


@pytest.mark.parametrize("variant_api", ["default"], indirect=True)
def test_raw_profiles_have_the_captured_keys_and_boolean_flags(variant_api: SimApi) -> None:
    rows = variant_api.result("GetProfiles", instanceID="acme", raw="true")
    assert all(
        {"id", "name", "owner", "type", "connector", "details", "serverSideExecution"}
        <= set(row)
        for row in rows
    )
    assert "ownerUserName" not in rows[0]
    assert [r["owner"] for r in rows] == ["admin", "$archiveadmin", "admin"]
    assert _automatic_values(variant_api) == [True, True, False]


@pytest.mark.parametrize("variant_api", ["automatic-as-string"], indirect=True)
def test_automatic_as_string(variant_api: SimApi) -> None:
    assert _automatic_values(variant_api) == ["true", "true", "false"]


def _zone_ids(api: SimApi) -> list[str]:
    return [z["id"] for z in api.result("GetTimeZones", instanceID="acme")]


WINDOW = {"instanceID": "acme", "fromIncluding": "2026-01-10T00:00:00",
          "toExcluding": "2026-01-10T06:00:00"}


@pytest.mark.parametrize("variant_api", ["default"], indirect=True)
def test_utc_known(variant_api: SimApi) -> None:
    assert "UTC" in _zone_ids(variant_api)
    variant_api.result("GetWorkerResults", timeZoneID="UTC", **WINDOW)
    variant_api.result("GetJobResults", timeZoneId="UTC", **WINDOW)


@pytest.mark.parametrize("variant_api", ["utc-unknown"], indirect=True)
def test_utc_unknown(variant_api: SimApi) -> None:
    ids = _zone_ids(variant_api)
    assert "UTC" not in ids and "Greenwich Standard Time" in ids
    expected = "The time zone ID 'UTC' was not found on the local computer."
    assert variant_api.error("GetWorkerResults", timeZoneID="UTC", **WINDOW) == expected
    assert variant_api.error("GetJobResults", timeZoneId="UTC", **WINDOW) == expected
    # A listed zero-offset id works and gives the same rows as UTC would.
    rows = variant_api.result("GetWorkerResults", timeZoneID="Greenwich Standard Time", **WINDOW)
    assert rows and all(r["startTime"].startswith("2026-01-10T0") for r in rows)


def _ids(api: SimApi, start: str, end: str) -> set[int]:
    rows = api.result(
        "GetWorkerResults", instanceID="acme", profileID="33", timeZoneID="UTC",
        fromIncluding=start, toExcluding=end,
    )
    return {r["id"] for r in rows}


# acme's profile 33 runs hourly at :05 for 7 minutes: a window :00-:10 holds a start,
# a window :10-:15 holds a completion (at :12).
@pytest.mark.parametrize("variant_api", ["default", "filter-on-start"], indirect=True)
def test_result_filter_on_completion_or_start(variant_api: SimApi, request) -> None:
    by_start = request.node.callspec.params["variant_api"] == "filter-on-start"
    starts = _ids(variant_api, "2026-01-10T03:00:00", "2026-01-10T03:10:00")
    completions = _ids(variant_api, "2026-01-10T03:10:00", "2026-01-10T03:15:00")
    assert (len(starts), len(completions)) == ((1, 0) if by_start else (0, 1))


@pytest.mark.parametrize("variant_api", ["default", "row-limit-20"], indirect=True)
def test_row_limit_fails_whatever_the_width(variant_api: SimApi, request) -> None:
    limited = request.node.callspec.params["variant_api"] == "row-limit-20"
    # globex's profile runs every 30 minutes: 48 rows a day, 12 in six hours.
    day = {"instanceID": "globex", "timeZoneID": "UTC",
           "fromIncluding": "2026-01-10T00:00:00", "toExcluding": "2026-01-11T00:00:00"}
    if limited:
        assert variant_api.error("GetWorkerResults", **day) == NULLABLE
    else:
        assert len(variant_api.result("GetWorkerResults", **day)) == 48
    quarter = {**day, "toExcluding": "2026-01-10T06:00:00"}
    assert len(variant_api.result("GetWorkerResults", **quarter)) == 12


def test_variants_and_behaviour_keys_are_validated() -> None:
    with pytest.raises(ScenarioError, match="unknown variant 'nope'"):
        apply_variant(load_scenario(DEFAULT_SCENARIO), "nope")
    data = {"instance_hosts": [{"name": "ih"}], "instances": [{"id": "a", "host": "ih"}]}
    with pytest.raises(ScenarioError, match=r"behaviour\.result_filter: must be one of"):
        load_scenario({**data, "behaviour": {"result_filter": "sometimes"}})
    with pytest.raises(ScenarioError, match="behaviour: unknown key"):
        load_scenario({**data, "behaviour": {"strict": True}})
    assert load_scenario({**data, "behaviour": {"result_row_limit": None}}).behaviour \
        .result_row_limit is None
    assert set(VARIANTS) >= {"default", "automatic-as-string", "utc-unknown",
                             "filter-on-start", "row-limit-20", "progressing-long-running",
                             "access-off-allows-statistics"}
    scenario = apply_variant(load_scenario(DEFAULT_SCENARIO), "access-off-allows-statistics")
    assert scenario.access_off_refuses_statistics is False
