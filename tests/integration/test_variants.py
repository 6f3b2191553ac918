"""The whole exporter against every simulator variant: each reading of unverified SPE
behaviour (exporter/simulator/README.md, "Unverified behaviour").

Whatever the variant, after half a day of polls every profile run, including one that
takes 5 hours, and every job run that completed since the exporter's first poll is
counted exactly once; the profile flags are read; long-running answers still give
durations and outcomes.
"""

from __future__ import annotations

import math

import pytest
import requests

from exporter.simulator import DEFAULT_SCENARIO, VARIANTS, Simulator, apply_variant, load_scenario
from exporter.simulator.clock import SimClock
from exporter.simulator.scenario import ProfileSpec

from .helpers import exporter_for, k, metric_values, scrape, serving_exporter

# A Friday noon, UTC; the daily jobs run at night in their zones.
START = 1768564800.0
POLL_EVERY = 20 * 60
POLLS = 36  # 12 hours
LONG_RUN = ProfileSpec(
    id=40, name="First Microsoft 365 run", interval_minutes=360, offset_minutes=30,
    duration_seconds=5 * 3600, results=["completedWithErrors"], items_archived=[1000],
)


def completed_between(interval_min: int, offset_min: int, duration_s: int, t0: float,
                      t1: float) -> int:
    """Runs k (start k*interval+offset) completing in [t0, t1]."""
    interval, shift = interval_min * 60, offset_min * 60 + duration_s
    return max(0, math.floor((t1 - shift) / interval) - math.ceil((t0 - shift) / interval) + 1)


def _started_simulator(scenario) -> Simulator:
    """A simulator of ``scenario`` whose clock stands at START until a test moves it."""
    sim = Simulator(scenario, host="127.0.0.1", port=0, username="admin",
                    password="admin-password", clock=SimClock(frozen_at=START))
    sim.start()
    return sim


@pytest.fixture(scope="module", params=list(VARIANTS))
def polled(request):
    scenario = apply_variant(load_scenario(DEFAULT_SCENARIO), request.param)
    acme = next(i for i in scenario.instances if i.id == "acme")
    acme.profiles = [*acme.profiles, LONG_RUN]
    sim = _started_simulator(scenario)
    try:
        with serving_exporter(sim) as exp:
            exp.poller.run_all_once()
            first = metric_values(scrape(exp))
            for _ in range(POLLS):
                sim.state.advance(POLL_EVERY)
                exp.poller.run_collector("simulator", "profiles")
                exp.poller.run_collector("simulator", "jobs")
            yield request.param, scenario, first, metric_values(scrape(exp)), exp, sim
    finally:
        sim.stop()


def _runs(values, name: str, **labels: str) -> float:
    return sum(
        v for (metric, pairs), v in values.items()
        if metric == name and all((key, val) in pairs for key, val in labels.items())
    )


def test_every_profile_run_is_counted_exactly_once(polled):
    variant, scenario, _, last, _, _ = polled
    t0, t1 = START, START + POLLS * POLL_EVERY
    checked = 0
    for inst in scenario.instances:
        if inst.status != "running" or not inst.service_provider_access:
            continue
        for profile in inst.profiles:
            if profile.interval_minutes is None:
                continue
            expected = completed_between(profile.interval_minutes, profile.offset_minutes,
                                         profile.duration_seconds, t0, t1)
            got = _runs(last, "mailstore_spe_profile_runs_total", instance_id=inst.id,
                        profile_id=str(profile.id))
            assert got == expected, (variant, inst.id, profile.id)
            checked += 1
        temp = inst.temporary_runs
        if temp is not None:
            expected = completed_between(temp.interval_minutes, temp.offset_minutes,
                                         temp.duration_seconds, t0, t1)
            got = _runs(last, "mailstore_spe_profile_runs_total", instance_id=inst.id,
                        profile_id="")
            assert got == expected, (variant, inst.id, "temporary")
    assert checked >= 4
    # The 5-hour run: two of them completed in the 12 hours, both counted once.
    long_runs = _runs(last, "mailstore_spe_profile_runs_total", instance_id="acme",
                      profile_id="40", result="completedWithErrors")
    assert long_runs == 2
    assert last[("mailstore_spe_profile_items_archived_total",
                 k(instance_id="acme", profile_id="40", profile_name=LONG_RUN.name))] == 2000
    assert last[("mailstore_spe_profile_last_run_duration_seconds",
                 k(instance_id="acme", profile_id="40", profile_name=LONG_RUN.name))] == 5 * 3600


def test_every_interval_job_run_is_counted_exactly_once(polled):
    variant, scenario, _, last, _, _ = polled
    t0, t1 = START, START + POLLS * POLL_EVERY
    acme = next(i for i in scenario.instances if i.id == "acme")
    job = next(j for j in acme.jobs if j.interval_minutes is not None)
    expected = completed_between(job.interval_minutes, 0, job.duration_seconds, t0, t1)
    assert expected >= 2
    got = _runs(last, "mailstore_spe_job_runs_total", instance_id="acme", job_id=str(job.id))
    assert got == expected, variant


def test_profile_and_job_polls_succeed_for_every_instance_with_access(polled):
    variant, _, first, last, _, _ = polled
    for values in (first, last):
        for collector in ("profiles", "jobs"):
            for iid in ("acme", "globex", "hooli"):
                key = k(collector=collector, instance_id=iid)
                assert values[("mailstore_spe_instance_collect_success", key)] == 1, (
                    variant, collector, iid)


def test_automatic_flag_is_read_in_every_shape(polled):
    _, _, _, last, _, _ = polled
    automatic = {
        pid: last[("mailstore_spe_profile_automatic",
                   k(instance_id="acme", profile_id=pid, profile_name=name))]
        for pid, name in (("33", "Microsoft 365 Mailboxes"), ("35", "Manual Import"))
    }
    assert automatic == {"33": 1, "35": 0}


def test_the_time_zone_id_sent_is_one_spe_knows(polled):
    variant, _, _, last, _, _ = polled
    assert last[("mailstore_spe_api_requests_total", k(function="GetTimeZones"))] == 1
    # No window was refused for its time zone (the unknown "UTC" would fail every one).
    refused = _runs(last, "mailstore_spe_api_request_failures_total",
                    function="GetWorkerResults")
    if variant == "row-limit-20":
        assert refused > 0  # windows split after "Nullable object must have a value."
    else:
        assert refused == 0


def test_long_running_answers_still_give_durations_and_outcomes(polled):
    variant, _, _, _, exp, sim = polled
    sim.state.set_fault("GetServiceStatus", "long_running", steps=2, step_seconds=0.05)
    try:
        exp.poller.run_collector("simulator", "service")
    finally:
        sim.state.clear_faults()
    v = metric_values(scrape(exp))
    fn = k(function="GetServiceStatus")
    assert v[("mailstore_spe_async_operations_total", k(function="GetServiceStatus",
                                                        result="succeeded"))] >= 1
    assert v[("mailstore_spe_async_operation_last_duration_seconds", fn)] > 0
    assert v[("mailstore_spe_collector_success", k(collector="service"))] == 1, variant



def test_overlap_cap_from_the_config_reaches_the_collectors(simulator):
    default = exporter_for(simulator)
    capped = exporter_for(simulator, result_windows={"max_overlap": "2h"})
    for name in ("profiles", "jobs"):
        assert default.poller.targets["simulator"].collectors[name].policy.max_overlap == 86400
        assert capped.poller.targets["simulator"].collectors[name].policy.max_overlap == 7200


def test_no_usable_time_zone_fails_only_the_result_collectors_with_one_clear_error(
    monkeypatch, caplog
):
    # An SPE that knows neither "UTC" nor a fixed zero-offset id: no reading has it, but
    # the exporter must still say so clearly and keep the other collectors working.
    from exporter.simulator import timezones

    monkeypatch.delitem(timezones.WINDOWS_ZONES, "Greenwich Standard Time")
    scenario = apply_variant(load_scenario(DEFAULT_SCENARIO), "utc-unknown")
    sim = _started_simulator(scenario)
    try:
        with serving_exporter(sim) as exp:
            exp.poller.run_all_once()
            exp.poller.run_all_once()
            v = metric_values(scrape(exp))
            page = requests.get(f"http://127.0.0.1:{exp.web.address[1]}/", timeout=5).text
    finally:
        sim.stop()
    for collector in ("profiles", "jobs"):
        assert v[("mailstore_spe_instance_collect_success",
                  k(collector=collector, instance_id="acme"))] == 0
    for collector in ("stores", "statistics", "process", "users"):
        assert v[("mailstore_spe_instance_collect_success",
                  k(collector=collector, instance_id="acme"))] == 1
    for collector in ("service", "environment", "instances", "stores"):
        assert v[("mailstore_spe_collector_success", k(collector=collector))] == 1
    assert v[("mailstore_spe_api_requests_total", k(function="GetTimeZones"))] == 1
    assert ("mailstore_spe_api_requests_total", k(function="GetWorkerResults")) not in v or (
        v[("mailstore_spe_api_requests_total", k(function="GetWorkerResults"))] == 0)
    assert "SPE does not know the time zone id &#x27;UTC&#x27; and lists no other id" in page
    errors = [r for r in caplog.records if r.getMessage().startswith("time zone check failed")]
    assert len(errors) == 1 and errors[0].levelname == "ERROR"
