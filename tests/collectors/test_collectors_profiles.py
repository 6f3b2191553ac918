"""Profiles collector: worker results counted once over sliding windows, last-run gauges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from collectors_testkit import (
    NOW,
    TARGET,
    FakeClient,
    by_instance,
    collect,
    make_ctx,
    series,
    states,
)

from exporter.collectors.ledger import DAY, HOUR, WindowPolicy
from exporter.collectors.profiles import (
    ProfilesCollector,
    parse_profiles,
    parse_worker_results,
)
from exporter.spe.errors import SPEAPIError

RUNS = "mailstore_spe_profile_runs_total"
ITEMS = "mailstore_spe_profile_items_archived_total"


def spe_time(offset: float) -> str:
    """SPE's datetime text (UTC, no Z) of NOW + offset seconds."""
    return datetime.fromtimestamp(NOW + offset, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def row(run_id: int, profile_id: int | None, result: str, complete: float, *,
        duration: float = 60, items: int = 0, name: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": run_id, "userName": "admin", "result": result, "itemsArchived": items,
        "startTime": spe_time(complete - duration), "completeTime": spe_time(complete),
        "machineName": "IH01",
    }
    if profile_id is not None:  # temporary runs have neither profileId nor profileName
        data["profileId"] = profile_id
        data["profileName"] = name or f"Profile {profile_id}"
    return data


def profile(profile_id: int, name: str | None, automatic: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {"id": profile_id, "serverSideExecution": {"automatic": automatic}}
    if name is not None:
        data["name"] = name
    return data


class FakeSPE:
    """GetProfiles and GetWorkerResults of one instance, filtering rows by completeTime."""

    def __init__(self, profiles: list[dict], rows: list[dict]) -> None:
        self.profiles = profiles
        self.rows = rows
        self.windows: list[tuple[datetime, datetime]] = []
        self.fail_with: Exception | None = None

    def worker_results(self, *, instanceID: str, fromIncluding: datetime,
                       toExcluding: datetime, timeZoneID: str, **rest: Any) -> Any:
        assert rest == {}, f"unexpected arguments {rest}"  # never profileID or userName
        assert timeZoneID == "UTC"
        assert fromIncluding.tzinfo is None and toExcluding.tzinfo is None
        assert fromIncluding.microsecond == 0 and toExcluding.microsecond == 0
        if self.fail_with is not None:
            raise self.fail_with
        self.windows.append((fromIncluding, toExcluding))
        lo = fromIncluding.strftime("%Y-%m-%dT%H:%M:%S")
        hi = toExcluding.strftime("%Y-%m-%dT%H:%M:%S")
        return [r for r in self.rows if lo <= r["completeTime"] < hi]

    def client(self) -> FakeClient:
        return FakeClient({
            "GetProfiles": lambda **args: self.profiles,
            "GetWorkerResults": self.worker_results,
        })


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def poll(collector: ProfilesCollector, spe: FakeSPE, clock: Clock, client: FakeClient | None
         = None):
    return collect(collector, make_ctx(client or spe.client(), now=clock))


def labels(profile_id: str, name: str, **extra: str) -> tuple[tuple[str, str], ...]:
    pairs = [("instance_id", "acme"), ("profile_id", profile_id), ("profile_name", name)]
    return tuple(pairs + list(extra.items()))


def test_parse_profiles_and_worker_results() -> None:
    profiles = parse_profiles([profile(33, "M365"), {"id": 34, "name": "IMAP"}])
    assert profiles["33"].automatic is True and profiles["34"].automatic is False
    runs = parse_worker_results([row(7, 33, "succeeded", 0, items=4), row(8, None, "failed", 0)])
    assert (runs[0].profile_id, runs[0].items_archived, runs[0].completed) == ("33", 4, NOW)
    assert runs[0].completed - runs[0].started == 60
    assert (runs[1].profile_id, runs[1].profile_name) == ("", None)


def test_first_poll_reads_one_day_of_history_for_gauges_but_counts_nothing_old() -> None:
    spe = FakeSPE([profile(33, "M365"), profile(34, "IMAP", automatic=False)], [
        row(1, 33, "succeeded", -5 * HOUR, duration=300, items=10),
        row(2, 33, "completedWithErrors", -1 * HOUR, duration=120, items=4),
        row(3, 34, "failed", -2 * DAY),  # older than the history window
    ])
    clock = Clock()
    result = poll(ProfilesCollector(), spe, clock)
    assert result.success and result.instance_outcomes == {"acme": True}
    assert spe.windows == [(datetime(2026, 5, 1, 12), datetime(2026, 5, 2, 12))]
    # Counters start at zero for every known result, also for temporary runs.
    runs = series(result.samples, RUNS)
    assert runs[labels("33", "M365", result="succeeded")] == 0
    assert runs[labels("", "", result="failed")] == 0
    assert len(runs) == 3 * 4
    assert series(result.samples, ITEMS)[labels("33", "M365")] == 0
    # Gauges come from the newest run seen.
    s = result.samples
    assert series(s, "mailstore_spe_profile_last_run_timestamp_seconds") == {
        labels("33", "M365"): NOW - HOUR
    }
    assert series(s, "mailstore_spe_profile_last_success_timestamp_seconds") == {
        labels("33", "M365"): NOW - 5 * HOUR
    }
    assert series(s, "mailstore_spe_profile_last_run_duration_seconds") == {
        labels("33", "M365"): 120
    }
    assert states(s, "mailstore_spe_profile_last_run_result", "result", profile_id="33") == {
        "succeeded": 0, "completedWithErrors": 1, "failed": 0, "cancelled": 0
    }
    assert series(s, "mailstore_spe_profile_automatic") == {
        labels("33", "M365"): 1, labels("34", "IMAP"): 0
    }


def test_each_worker_result_is_counted_once_across_overlapping_windows() -> None:
    spe = FakeSPE([profile(33, "M365")], [])
    clock = Clock()
    collector = ProfilesCollector()
    poll(collector, spe, clock)

    spe.rows.append(row(100, 33, "succeeded", 60, items=5))
    clock.now = NOW + 120
    second = poll(collector, spe, clock)
    clock.now = NOW + 240
    spe.rows.append(row(101, 33, "succeeded", 200, items=2))
    spe.rows.append(row(102, None, "cancelled", 210))  # a temporary run
    third = poll(collector, spe, clock)

    # The second and third windows overlap, so run 100 was returned by both polls.
    (w2,), (w3,) = spe.windows[1:2], spe.windows[2:3]
    # Each window starts one hour (the overlap) before the previous one's end.
    assert w2 == (datetime(2026, 5, 2, 11, 0), datetime(2026, 5, 2, 12, 2))
    assert w3 == (datetime(2026, 5, 2, 11, 2), datetime(2026, 5, 2, 12, 4))
    assert series(second.samples, RUNS)[labels("33", "M365", result="succeeded")] == 1
    assert series(third.samples, RUNS)[labels("33", "M365", result="succeeded")] == 2
    assert series(third.samples, ITEMS)[labels("33", "M365")] == 7
    assert series(third.samples, RUNS)[labels("", "", result="cancelled")] == 1
    assert series(third.samples, "mailstore_spe_profile_last_run_timestamp_seconds")[
        labels("", "")] == NOW + 210


def test_counters_survive_a_failed_poll_and_never_go_backwards() -> None:
    spe = FakeSPE([profile(33, "M365")], [])
    clock = Clock()
    collector = ProfilesCollector()
    poll(collector, spe, clock)
    spe.rows.append(row(100, 33, "failed", 60))
    clock.now += 120
    assert series(poll(collector, spe, clock).samples, RUNS)[
        labels("33", "M365", result="failed")] == 1

    spe.fail_with = SPEAPIError("Service provider access is disabled",
                                function="GetWorkerResults")
    spe.rows.append(row(101, 33, "failed", 150))
    clock.now += 120
    failed = poll(collector, spe, clock)
    assert failed.instance_outcomes == {"acme": False} and failed.samples == []

    spe.fail_with = None
    clock.now += 120
    after = poll(collector, spe, clock)
    assert series(after.samples, RUNS)[labels("33", "M365", result="failed")] == 2


def test_windows_after_an_outage_are_chunked_and_cover_the_gap() -> None:
    spe = FakeSPE([profile(33, "M365")], [])
    clock = Clock()
    collector = ProfilesCollector()
    poll(collector, spe, clock)
    spe.fail_with = SPEAPIError("down", function="GetWorkerResults")
    clock.now += 2.5 * DAY
    poll(collector, spe, clock)
    spe.fail_with = None
    spe.windows.clear()
    spe.rows.append(row(100, 33, "succeeded", 1.5 * DAY))
    result = poll(collector, spe, clock)

    assert all(end - start <= timedelta(days=1) for start, end in spe.windows)
    assert spe.windows[0][0] == datetime(2026, 5, 2, 11)  # last window end - 1 h overlap
    assert spe.windows[-1][1] == datetime(2026, 5, 5, 0)
    assert all(a[1] == b[0] for a, b in zip(spe.windows, spe.windows[1:], strict=False))
    assert series(result.samples, RUNS)[labels("33", "M365", result="succeeded")] == 1


def test_catch_up_is_capped() -> None:
    spe = FakeSPE([profile(33, "M365")], [])
    clock = Clock()
    collector = ProfilesCollector(WindowPolicy(initial_lookback=DAY, max_catch_up=2 * DAY))
    poll(collector, spe, clock)
    spe.windows.clear()
    clock.now += 30 * DAY
    poll(collector, spe, clock)
    assert len(spe.windows) == 2
    assert spe.windows[0][0] == datetime(2026, 5, 30, 12)


def test_vanished_profile_disappears_with_its_counters() -> None:
    spe = FakeSPE([profile(33, "M365"), profile(34, "IMAP")], [])
    clock = Clock()
    collector = ProfilesCollector()
    poll(collector, spe, clock)
    spe.rows.append(row(100, 34, "succeeded", 60))
    clock.now += 120
    assert series(poll(collector, spe, clock).samples, RUNS)[
        labels("34", "IMAP", result="succeeded")] == 1

    spe.profiles = [profile(33, "M365")]
    clock.now += 120
    result = poll(collector, spe, clock)
    assert not [s for s in result.samples if ("profile_id", "34") in s.labels]
    assert any(("profile_id", "33") in s.labels for s in result.samples)


def test_run_of_a_profile_not_yet_listed_is_counted_once_it_is() -> None:
    spe = FakeSPE([profile(33, "M365")], [])
    clock = Clock()
    collector = ProfilesCollector()
    poll(collector, spe, clock)
    spe.rows.append(row(100, 35, "succeeded", 60, name="New"))
    clock.now += 120
    first = poll(collector, spe, clock)
    assert not [s for s in first.samples if ("profile_id", "35") in s.labels]
    spe.profiles.append(profile(35, None))  # listed now, without a name
    clock.now += 120
    second = poll(collector, spe, clock)
    # The row's profileName is the fallback for a profile without a name.
    assert series(second.samples, RUNS)[labels("35", "New", result="succeeded")] == 1


def test_unknown_result_is_counted_and_shown_in_the_state_set() -> None:
    spe = FakeSPE([profile(33, "M365")], [])
    clock = Clock()
    collector = ProfilesCollector()
    poll(collector, spe, clock)
    spe.rows.append(row(100, 33, "completedWithWarnings", 60))
    spe.rows.append(row(99, 33, "succeeded", 30))  # older, must not become "last run"
    clock.now += 120
    s = poll(collector, spe, clock).samples
    assert series(s, RUNS)[labels("33", "M365", result="completedWithWarnings")] == 1
    assert states(s, "mailstore_spe_profile_last_run_result", "result", profile_id="33") == {
        "succeeded": 0, "completedWithErrors": 0, "failed": 0, "cancelled": 0,
        "completedWithWarnings": 1,
    }
    assert series(s, "mailstore_spe_profile_last_success_timestamp_seconds")[
        labels("33", "M365")] == NOW + 30


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ({"itemsArchived": "four"}, "result[1].itemsArchived: expected a number, got str 'four'"),
        ({"itemsArchived": True}, "result[1].itemsArchived: expected a number, got bool True"),
        ({"id": None}, "result[1].id: null, expected an id"),
        ({"result": 3}, "result[1].result: expected a string, got int 3"),
        ({"completeTime": "2026-05-02T12:01:01 PM"},
         "result[1].completeTime: not an SPE datetime: '2026-05-02T12:01:01 PM'"),
    ],
)
def test_malformed_row_fails_the_instance_and_changes_nothing(bad_row, message) -> None:
    spe = FakeSPE([profile(33, "M365")], [])
    clock = Clock()
    collector = ProfilesCollector()
    poll(collector, spe, clock)
    good = row(100, 33, "succeeded", 60)
    spe.rows[:] = [good, {**row(101, 33, "failed", 61), **bad_row}]
    clock.now += 120
    result = poll(collector, spe, clock)
    assert result.instance_outcomes == {"acme": False}
    assert result.errors == [f"instance acme: GetWorkerResults: {message}"]

    spe.rows[:] = [good]  # fixed on the server: the good row is counted exactly once
    clock.now += 120
    after = poll(collector, spe, clock)
    assert series(after.samples, RUNS)[labels("33", "M365", result="succeeded")] == 1


def test_null_worker_result_list_and_profile_failure_isolated_per_instance() -> None:
    client = FakeClient({
        "GetProfiles": by_instance({"acme": [profile(33, "M365")],
                                    "beta": SPEAPIError("Service provider access is disabled",
                                                        function="GetProfiles"),
                                    "gamma": [profile(1, "x")]}),
        "GetWorkerResults": lambda instanceID, **_: None if instanceID == "gamma" else [],
    })
    result = collect(ProfilesCollector(), make_ctx(client, running=["acme", "beta", "gamma"]))
    assert result.instance_outcomes == {"acme": True, "beta": False, "gamma": False}
    assert result.errors == [
        "instance beta: GetProfiles: Service provider access is disabled",
        "instance gamma: GetWorkerResults: result: expected a list, got null",
    ]
    assert {dict(s.labels)["instance_id"] for s in result.samples} == {"acme"}
    assert client.calls_of("GetProfiles")[0] == {"instanceID": "acme", "raw": True}
    assert TARGET == result.samples[0].labels[0][1]
