"""Shared collector helpers: defensive parsing, datetimes, sample building, the fan-out."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from collectors_testkit import TARGET, FakeClient, collect, make_ctx, states

from exporter.collectors.base import Collector, CollectResult, map_instances
from exporter.collectors.parsing import (
    ParseError,
    Record,
    mb_to_bytes,
    parse_spe_datetime,
    records_of,
    to_spe_datetime,
)
from exporter.samples import LabelMismatchError, SampleBuilder
from exporter.spe.errors import SPEAPIError

# --- datetimes ---------------------------------------------------------------------


def test_spe_datetime_without_offset_is_utc() -> None:
    assert parse_spe_datetime("2026-05-02T03:30:04") == 1777692604.0


def test_spe_datetime_with_z_and_dotnet_fraction() -> None:
    assert parse_spe_datetime("2026-07-15T10:58:01Z") == 1784113081.0
    assert parse_spe_datetime("2026-07-15T10:58:01.5000000Z") == 1784113081.5
    assert parse_spe_datetime("2026-07-15T12:58:01+02:00") == 1784113081.0


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00", "2026-05-02"])
def test_bad_spe_datetime_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="not an SPE datetime"):
        parse_spe_datetime(text)


def test_datetime_arguments_are_naive_utc_whole_seconds() -> None:
    moment = to_spe_datetime(1777692604.9)
    assert moment.tzinfo is None
    assert moment.isoformat() == "2026-05-02T03:30:04"


def test_mb_to_bytes() -> None:
    assert mb_to_bytes(2) == 2 * 1048576


# --- Record ------------------------------------------------------------------------


def test_record_errors_name_function_and_field() -> None:
    rec = records_of([{"n": "12 items", "b": 1, "x": None}], "GetThing")[0]
    with pytest.raises(ParseError, match=r"GetThing: result\[0\]\.n: expected a number, got str"):
        rec.number("n")
    with pytest.raises(ParseError, match=r"GetThing: result\[0\]\.b: expected true or false"):
        rec.flag("b")
    with pytest.raises(ParseError, match=r"result\[0\]\.x: null, expected a string"):
        rec.text("x")
    with pytest.raises(ParseError, match=r"result\[0\]\.missing: missing"):
        rec.identifier("missing")
    assert rec.text_or_none("x") is None


@pytest.mark.parametrize(
    ("raw", "flag"),
    [(True, True), (False, False), ("true", True), ("False", False), ("TRUE", True),
     (" false ", False)],
)
def test_flags_accept_json_booleans_and_true_false_strings(raw, flag) -> None:
    # SPE takes "automatic": "true" as a string on input; its output type is unknown.
    assert Record({"automatic": raw}, "GetProfiles").flag("automatic") is flag


@pytest.mark.parametrize("raw", ["yes", "1", 1, 0, "", [], {}])
def test_other_flag_values_are_errors_naming_the_field(raw) -> None:
    with pytest.raises(ParseError, match=r"GetProfiles: result\.automatic: expected true or false"):
        Record({"automatic": raw}, "GetProfiles").flag("automatic")


def test_numbers_and_integers_accept_numeric_strings() -> None:
    rec = Record({"a": "12", "b": " 3.5 ", "c": "-7", "d": "1e3", "e": 4}, "F")
    assert (rec.number("a"), rec.number("b"), rec.number("c"), rec.number("d")) == (
        12.0, 3.5, -7.0, 1000.0
    )
    assert (rec.integer("a"), rec.integer("c"), rec.integer("d"), rec.integer("e")) == (
        12, -7, 1000, 4
    )
    assert rec.identifier("a") == "12" and rec.identifier("e") == "4"
    for bad in ("12 MB", "0x10", "", "nan", "inf"):
        with pytest.raises(ParseError, match=r"F: result\.x: expected a number, got str"):
            Record({"x": bad}, "F").number("x")
    with pytest.raises(ParseError, match=r"result\.b: expected an integer, got str ' 3\.5 '"):
        rec.integer("b")


def test_bool_is_not_a_number_and_ids_become_strings() -> None:
    rec = Record({"t": True, "id": 13, "fid": 13.0, "sid": "acme"}, "F")
    with pytest.raises(ParseError):
        rec.number("t")
    assert (rec.identifier("id"), rec.identifier("fid"), rec.identifier("sid")) == (
        "13", "13", "acme"
    )


def test_non_list_and_non_object_results_are_parse_errors() -> None:
    with pytest.raises(ParseError, match="GetStores: result: expected a list, got null"):
        records_of(None, "GetStores")
    with pytest.raises(ParseError, match=r"result\[1\]: expected an object, got str"):
        records_of([{}, "x"], "GetStores")
    with pytest.raises(ParseError, match="expected an object"):
        Record([1, 2], "GetEnvironmentInfo")


# --- SampleBuilder -----------------------------------------------------------------


def test_labels_follow_metricdefs_order_and_counters_get_total() -> None:
    out = SampleBuilder(TARGET)
    out.add("mailstore_spe_job_runs", 3, result="failed", action="A", job_id=1,
            instance_id="acme")
    (sample,) = out.samples
    assert sample.name == "mailstore_spe_job_runs_total"
    assert sample.labels == (
        ("target", TARGET), ("instance_id", "acme"), ("job_id", "1"), ("action", "A"),
        ("result", "failed"),
    )
    assert sample.value == 3.0


def test_wrong_label_names_are_rejected() -> None:
    out = SampleBuilder(TARGET)
    with pytest.raises(LabelMismatchError):
        out.add("mailstore_spe_instance_users", 1, instance="acme")
    with pytest.raises(LabelMismatchError):
        out.add("mailstore_spe_instance_users", 1, instance_id="acme", extra="x")


def test_state_set_keeps_unknown_values_as_their_own_state() -> None:
    out = SampleBuilder(TARGET)
    out.state_set("mailstore_spe_instance_status", "status", ("running", "stopped"),
                  "safeMode", instance_id="a")
    out.state_set("mailstore_spe_instance_status", "status", ("running", "stopped"),
                  "running", instance_id="b")
    status = "mailstore_spe_instance_status"
    assert states(out.samples, status, "status", instance_id="a") == {
        "running": 0, "stopped": 0, "safeMode": 1
    }
    assert states(out.samples, status, "status", instance_id="b") == {"running": 1, "stopped": 0}


def test_duplicate_series_are_dropped_keeping_the_first() -> None:
    out = SampleBuilder(TARGET)
    out.add("mailstore_spe_instance_users", 1, instance_id="acme")
    out.add("mailstore_spe_instance_users", 2, instance_id="acme")
    assert [s.value for s in out.samples] == [1.0]


# --- Collector fault boundary and map_instances ------------------------------------


class _Broken(Collector):
    name = "broken"
    interval = 60.0
    functions = ("GetNothing",)

    def run(self, ctx):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("boom")


def test_collect_never_raises() -> None:
    result = collect(_Broken(), make_ctx(FakeClient({})))
    assert isinstance(result.result, CollectResult)
    assert (result.success, result.samples) == (False, [])
    assert result.errors == ["internal error: ZeroDivisionError: boom"]


def test_map_instances_isolates_failures_and_bounds_concurrency() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def work(instance_id: str) -> str:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)
        with lock:
            active -= 1
        if instance_id == "bad":
            raise SPEAPIError("Service provider access is disabled", function="GetUsers")
        return instance_id.upper()

    ids = ["a", "bad", "c", "d", "e", "f"]
    results = map_instances(make_ctx(FakeClient({}), concurrency=2), ids, work)
    assert list(results) == ids
    assert results["a"] == "A" and results["f"] == "F"
    assert isinstance(results["bad"], SPEAPIError)
    assert peak == 2


def test_map_instances_on_a_shared_pool_queues_one_task_per_lane_not_per_instance() -> None:
    # Thousands of queued per-instance futures were small objects alive for a whole run.
    submitted = 0

    class CountingPool(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            nonlocal submitted
            submitted += 1
            return super().submit(fn, *args, **kwargs)

    ids = [f"i{n:03d}" for n in range(200)]
    with CountingPool(max_workers=3) as pool:
        ctx = dataclasses.replace(make_ctx(FakeClient({}), concurrency=3), executor=pool)
        results = map_instances(ctx, ids, str.upper)
    assert submitted == 3
    assert list(results) == ids and all(results[i] == i.upper() for i in ids)


def test_map_instances_stops_taking_instances_once_the_client_is_closed() -> None:
    client = FakeClient({})
    client.stopped = False  # what SPEClient.close() turns True
    done = []

    def work(instance_id: str) -> str:
        done.append(instance_id)
        if len(done) == 3:
            client.stopped = True  # e.g. a reload retired this target mid-run
        return instance_id

    ids = [f"i{n}" for n in range(50)]
    results = map_instances(make_ctx(client, concurrency=2), ids, work)
    assert len(done) <= 4  # the calls already in flight finish, nothing new starts
    left_out = [r for r in results.values() if isinstance(r, Exception)]
    assert len(left_out) == len(ids) - len(done)
    assert "not polled: the exporter stopped or reloaded" in str(left_out[0])
