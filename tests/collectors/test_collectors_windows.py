"""Result windows (ledger) and the time zone check, without a server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from collectors_testkit import NOW, FakeClient, make_ctx

from exporter.collectors.ledger import (
    DAY,
    HOUR,
    MINUTE,
    OVERLAP_MARGIN,
    TOO_MANY_ROWS,
    ResultLedger,
    WindowPolicy,
    WindowTooNarrowError,
    fetch_windows,
)
from exporter.collectors.parsing import to_spe_datetime
from exporter.collectors.results import (
    TimeZoneUnavailableError,
    pick_zone_id,
    result_zone_id,
)
from exporter.spe.errors import SPEAPIError

T0 = float(int(NOW))


def _ledger(**policy: float) -> ResultLedger:
    return ResultLedger(WindowPolicy(initial_lookback=DAY, **policy))


# --- overlap -----------------------------------------------------------------------


def test_overlap_grows_with_the_longest_run_up_to_the_cap() -> None:
    ledger = _ledger(max_overlap=6 * HOUR)
    assert ledger.overlap == HOUR
    ledger.observe_run(T0, T0 + 20 * MINUTE)  # shorter than the base overlap
    assert ledger.overlap == HOUR
    ledger.observe_run(T0, T0 + 5 * HOUR)
    assert ledger.overlap == 5 * HOUR + OVERLAP_MARGIN
    ledger.observe_run(T0, T0 + 2 * HOUR)  # never shrinks
    assert ledger.overlap == 5 * HOUR + OVERLAP_MARGIN
    ledger.observe_run(T0, T0 + 30 * HOUR)
    assert ledger.overlap == 6 * HOUR  # the cap
    ledger.observe_run(None, T0)  # a row without startTime teaches nothing
    assert ledger.overlap == 6 * HOUR


def test_windows_reach_back_by_the_grown_overlap() -> None:
    ledger = _ledger()
    ledger.spans(T0)
    ledger.commit(T0)
    ledger.observe_run(T0 - 6 * HOUR, T0 - HOUR)
    ((start, end),) = ledger.spans(T0 + 600)
    assert (start, end) == (T0 - 5 * HOUR - OVERLAP_MARGIN, T0 + 600)


def test_policy_rejects_a_cap_below_the_base_overlap() -> None:
    with pytest.raises(ValueError, match="max_overlap"):
        WindowPolicy(initial_lookback=DAY, max_overlap=HOUR / 2)


def test_runs_forgotten_before_a_later_growth_are_not_counted_again() -> None:
    ledger = _ledger()
    ledger.spans(T0)
    ledger.mark("1", T0 + 10)
    ledger.commit(T0 + 600)
    # Four hours later the id of run 1 is gone (horizon: window end - 2 h) ...
    ledger.spans(T0 + 4 * HOUR)
    ledger.commit(T0 + 4 * HOUR)
    assert ledger.is_new("1")
    # ... then a 6-hour run makes the next window reach back past run 1's completion:
    ledger.observe_run(T0 - 2 * HOUR, T0 + 4 * HOUR)
    (start, _), *_ = ledger.spans(T0 + 5 * HOUR)
    assert start < T0 + 10
    assert not ledger.counts(T0 + 10)  # read again, not counted again
    assert ledger.counts(T0 + 4 * HOUR)


# --- splitting ---------------------------------------------------------------------


class RowLimitedSPE:
    """GetWorkerResults answering TOO_MANY_ROWS for windows holding more than ``limit``."""

    def __init__(self, run_times: list[float], limit: int) -> None:
        self.run_times, self.limit = run_times, limit
        self.calls: list[tuple[float, float]] = []

    def fetch(self, start: datetime, end: datetime) -> list[float]:
        a, b = _unix(start), _unix(end)
        self.calls.append((a, b))
        rows = [t for t in self.run_times if a <= t < b]
        if len(rows) > self.limit:
            raise SPEAPIError(TOO_MANY_ROWS, function="GetWorkerResults")
        return rows


def _unix(moment: datetime) -> float:
    return moment.replace(tzinfo=UTC).timestamp()


def test_a_window_with_too_many_rows_is_split_in_halves_and_nothing_is_lost() -> None:
    runs = [T0 - DAY + i * 600 for i in range(144)]  # every 10 minutes for a day
    spe = RowLimitedSPE(runs, limit=40)
    ledger = _ledger()
    rows, narrowest = fetch_windows(ledger, T0, spe.fetch)
    assert sorted(rows) == runs  # each row exactly once
    assert narrowest == 6 * HOUR
    widths = [b - a for a, b in spe.calls]
    assert widths == [DAY, 12 * HOUR, 6 * HOUR, 6 * HOUR, 12 * HOUR, 6 * HOUR, 6 * HOUR]
    # The next poll starts with the width that worked, then widens again.
    ledger.commit(T0, narrowest)
    assert ledger.width == 6 * HOUR
    ledger.commit(T0 + 60)
    assert ledger.width == 12 * HOUR
    ledger.commit(T0 + 120)
    assert ledger.width is None  # back to max_window


def test_a_window_still_too_big_at_the_minimum_width_fails_clearly() -> None:
    burst = [T0 - 3 * MINUTE + i for i in range(100)]  # 100 runs within 100 seconds
    spe = RowLimitedSPE(burst, limit=50)
    ledger = ResultLedger(WindowPolicy(initial_lookback=HOUR, min_window=5 * MINUTE))
    with pytest.raises(WindowTooNarrowError) as caught:
        fetch_windows(ledger, T0, spe.fetch)
    message = str(caught.value)
    assert message.startswith("GetWorkerResults: Nullable object must have a value. (")
    assert "cannot be split below 5 minutes" in message
    assert min(b - a for a, b in spe.calls) >= 5 * MINUTE
    assert ledger.window_end is None  # nothing committed: the next poll retries


def test_other_api_errors_are_not_split() -> None:
    def fetch(start: datetime, end: datetime) -> list[float]:
        raise SPEAPIError("Service provider access is disabled", function="GetWorkerResults")

    with pytest.raises(SPEAPIError, match="access is disabled"):
        fetch_windows(_ledger(), T0, fetch)


def test_windows_keep_the_spe_datetime_form() -> None:
    ledger = _ledger()
    ((start, end),) = ledger.windows(T0 + 0.9)
    assert (start, end) == (to_spe_datetime(T0 - DAY), to_spe_datetime(T0))


# --- time zone check ---------------------------------------------------------------

UTC_ZONE = {"id": "UTC", "displayName": "(UTC) Coordinated Universal Time"}
GREENWICH = {"id": "Greenwich Standard Time", "displayName": "(UTC+00:00) Monrovia, Reykjavik"}
BERLIN = {"id": "W. Europe Standard Time", "displayName": "(UTC+01:00) Amsterdam, Berlin"}
LONDON = {"id": "GMT Standard Time", "displayName": "(UTC+00:00) Dublin, London"}


@pytest.mark.parametrize(
    ("zones", "chosen"),
    [
        ([BERLIN, UTC_ZONE, GREENWICH], "UTC"),
        ([BERLIN, LONDON, GREENWICH], "Greenwich Standard Time"),
        ([BERLIN, {"id": "Coordinated Universal Time", "displayName": "(UTC) Coordinated"}],
         "Coordinated Universal Time"),
        ([BERLIN, LONDON], None),  # London has summer time: not a fixed zero offset
    ],
)
def test_pick_zone_id(zones, chosen) -> None:
    assert pick_zone_id([(z["id"], z.get("displayName")) for z in zones]) == chosen


def test_zone_is_checked_once_per_client_and_falls_back_to_a_listed_zero_offset_id() -> None:
    client = FakeClient({"GetTimeZones": [BERLIN, GREENWICH]})
    ctx = make_ctx(client)
    assert result_zone_id(ctx, "acme") == "Greenwich Standard Time"
    assert result_zone_id(ctx, "globex") == "Greenwich Standard Time"
    assert client.calls_of("GetTimeZones") == [{"instanceID": "acme"}]


def test_no_usable_zone_is_one_clear_error_and_logged_once(caplog) -> None:
    client = FakeClient({"GetTimeZones": [BERLIN, LONDON]})
    ctx = make_ctx(client)
    for instance_id in ("acme", "globex"):
        with pytest.raises(TimeZoneUnavailableError) as caught:
            result_zone_id(ctx, instance_id)
    assert str(caught.value) == (
        "GetTimeZones: SPE does not know the time zone id 'UTC' and lists no other id with a "
        "fixed zero offset (Greenwich Standard Time or a display name starting with '(UTC)') "
        "among its 2 zones: profile and job results cannot be read in UTC"
    )
    assert len(client.calls_of("GetTimeZones")) == 1
    assert [r.levelname for r in caplog.records if "time zone" in r.getMessage()] == ["ERROR"]


def test_a_failing_check_sends_utc_unverified_and_asks_the_next_instance() -> None:
    def zones(instanceID: str, **_: object):
        if instanceID == "initech":
            return SPEAPIError("Service provider access is disabled", function="GetTimeZones")
        return [BERLIN, GREENWICH]

    client = FakeClient({"GetTimeZones": zones})
    ctx = make_ctx(client)
    assert result_zone_id(ctx, "initech") == "UTC"
    assert result_zone_id(ctx, "initech") == "UTC"  # not asked twice
    assert result_zone_id(ctx, "acme") == "Greenwich Standard Time"
    assert result_zone_id(ctx, "initech") == "Greenwich Standard Time"
    assert [c["instanceID"] for c in client.calls_of("GetTimeZones")] == ["initech", "acme"]
