"""Per-instance collector state is forgotten once SPE no longer lists the instance.

Stopped instances and instances whose poll failed keep their state (their counters
continue); other targets' state is never touched; without an instance list nothing is
forgotten.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from collectors_testkit import NOW, TARGET, FakeClient, collect, make_ctx, value

from exporter.collectors.base import CollectContext, CollectResult
from exporter.collectors.jobs import JobsCollector
from exporter.collectors.ledger import DAY, HOUR
from exporter.collectors.profiles import ProfilesCollector
from exporter.spe.errors import SPEAPIError

PROFILE_RUNS = "mailstore_spe_profile_runs_total"
JOB_RUNS = "mailstore_spe_job_runs_total"
OTHER = "spe2"


def spe_time(offset: float) -> str:
    return datetime.fromtimestamp(NOW + offset, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def in_window(rows: list[dict[str, Any]], start: datetime, end: datetime) -> list[dict]:
    lo, hi = start.strftime("%Y-%m-%dT%H:%M:%S"), end.strftime("%Y-%m-%dT%H:%M:%S")
    return [r for r in rows if lo <= r["completeTime"] < hi]


class FakeSPE:
    """Profile 33 and job 1 on every instance; runs per instance; failures on demand."""

    def __init__(self) -> None:
        self.now = NOW
        self.worker_rows: dict[str, list[dict[str, Any]]] = {}
        self.job_rows: dict[str, list[dict[str, Any]]] = {}
        self.failing: set[str] = set()
        self.instances: Any = []  # GetInstances result (or an exception)
        self.windows: dict[str, list[tuple[datetime, datetime]]] = {}

    def _check(self, function: str, instance_id: str) -> None:
        if instance_id in self.failing:
            raise SPEAPIError("Service provider access is disabled", function=function)

    def profiles(self, *, instanceID: str, **_: Any) -> Any:
        self._check("GetProfiles", instanceID)
        return [{"id": 33, "name": "M365", "serverSideExecution": {"automatic": True}}]

    def worker_results(self, *, instanceID: str, fromIncluding: datetime,
                       toExcluding: datetime, **_: Any) -> Any:
        self.windows.setdefault(instanceID, []).append((fromIncluding, toExcluding))
        return in_window(self.worker_rows.get(instanceID, []), fromIncluding, toExcluding)

    def jobs(self, *, instanceID: str, **_: Any) -> Any:
        self._check("GetJobs", instanceID)
        return [{"id": 1, "name": "Verify", "action": "VerifyStores", "enabled": True,
                 "lastCompleteDateTimeUtc": None, "nextStartDateTimeUtc": None}]

    def job_results(self, *, instanceID: str, fromIncluding: datetime,
                    toExcluding: datetime, **_: Any) -> Any:
        return in_window(self.job_rows.get(instanceID, []), fromIncluding, toExcluding)

    def finish_run(self, instance_id: str, run_id: int, offset: float) -> None:
        """A succeeded profile run and job run on ``instance_id`` completing at NOW+offset."""
        self.worker_rows.setdefault(instance_id, []).append(
            {"id": run_id, "profileId": 33, "profileName": "M365", "result": "succeeded",
             "itemsArchived": 1, "startTime": spe_time(offset - 10),
             "completeTime": spe_time(offset)})
        self.job_rows.setdefault(instance_id, []).append(
            {"jobResultId": run_id, "jobId": 1, "action": "VerifyStores",
             "completeTime": spe_time(offset), "result": "succeeded"})

    def client(self) -> FakeClient:
        return FakeClient({
            "GetInstances": lambda **_: self.instances,
            "GetProfiles": self.profiles,
            "GetWorkerResults": self.worker_results,
            "GetJobs": self.jobs,
            "GetJobResults": self.job_results,
        })

    def ctx(self, running=(), *, stopped=(), target: str = TARGET,
            known: bool = True) -> CollectContext:
        ctx = make_ctx(self.client(), running, stopped=stopped, known=known,
                       now=lambda: self.now)
        return dataclasses.replace(ctx, target=target)


def succeeded(collector, result: CollectResult, instance_id: str) -> float:
    if isinstance(collector, ProfilesCollector):
        return value(result.samples, PROFILE_RUNS, instance_id=instance_id, profile_id="33",
                     result="succeeded")
    return value(result.samples, JOB_RUNS, instance_id=instance_id, job_id="1",
                 result="succeeded")


COLLECTORS = [pytest.param(ProfilesCollector, id="profiles"),
              pytest.param(JobsCollector, id="jobs")]


def counted_once(collector_class) -> tuple[Any, FakeSPE]:
    """A collector that has counted one run of acme (and polled beta) on TARGET."""
    spe = FakeSPE()
    collector = collector_class()
    collect(collector, spe.ctx(["acme", "beta"]))
    spe.finish_run("acme", 100, 60)
    spe.now = NOW + 120
    result = collect(collector, spe.ctx(["acme", "beta"]))
    assert succeeded(collector, result, "acme") == 1
    return collector, spe


@pytest.mark.parametrize("collector_class", COLLECTORS)
def test_deleted_instance_is_forgotten_and_starts_from_zero_when_it_reappears(
    collector_class,
) -> None:
    collector, spe = counted_once(collector_class)
    spe.now = NOW + 240
    collect(collector, spe.ctx(["beta"]))  # acme was deleted from SPE
    assert collector.instance_states.keys() == [(TARGET, "beta")]

    # An instance created again with the same id is a new instance: fresh ledger, zero.
    spe.finish_run("acme", 101, 300)
    spe.now = NOW + 360
    result = collect(collector, spe.ctx(["acme", "beta"]))
    assert result.instance_outcomes == {"acme": True, "beta": True}
    assert succeeded(collector, result, "acme") == 0  # run 101 predates the new first poll


def test_reappearing_instance_reads_its_history_like_a_first_poll() -> None:
    collector, spe = counted_once(ProfilesCollector)
    spe.now = NOW + 240
    collect(collector, spe.ctx(["beta"]))
    spe.windows.clear()
    spe.now = NOW + 360
    collect(collector, spe.ctx(["acme"]))
    end = datetime.fromtimestamp(NOW + 360, UTC).replace(tzinfo=None)
    assert spe.windows["acme"] == [(end - timedelta(seconds=DAY), end)]


@pytest.mark.parametrize("collector_class", COLLECTORS)
def test_stopped_instance_keeps_its_state_and_its_counters_continue(collector_class) -> None:
    collector, spe = counted_once(collector_class)
    spe.now = NOW + 240
    stopped = collect(collector, spe.ctx(["beta"], stopped=["acme"]))
    assert stopped.instance_outcomes == {"beta": True}  # a stopped instance is not asked
    assert sorted(collector.instance_states.keys()) == [(TARGET, "acme"), (TARGET, "beta")]

    spe.finish_run("acme", 101, 300)
    spe.now = NOW + 360
    result = collect(collector, spe.ctx(["acme", "beta"]))
    assert succeeded(collector, result, "acme") == 2


@pytest.mark.parametrize("collector_class", COLLECTORS)
def test_instance_whose_poll_failed_keeps_its_state(collector_class) -> None:
    collector, spe = counted_once(collector_class)
    spe.failing.add("acme")
    spe.now = NOW + 240
    failed = collect(collector, spe.ctx(["acme", "beta"]))
    assert failed.instance_outcomes == {"acme": False, "beta": True}
    assert sorted(collector.instance_states.keys()) == [(TARGET, "acme"), (TARGET, "beta")]

    spe.failing.clear()
    spe.finish_run("acme", 101, 300)
    spe.now = NOW + 360
    result = collect(collector, spe.ctx(["acme", "beta"]))
    assert succeeded(collector, result, "acme") == 2


@pytest.mark.parametrize("collector_class", COLLECTORS)
def test_other_targets_state_is_never_touched(collector_class) -> None:
    collector, spe = counted_once(collector_class)  # acme on TARGET
    collect(collector, spe.ctx(["acme"], target=OTHER))  # the same id on another target
    spe.now = NOW + 240
    collect(collector, spe.ctx([], target=OTHER))  # OTHER lost every instance
    assert sorted(collector.instance_states.keys()) == [(TARGET, "acme"), (TARGET, "beta")]

    spe.now = NOW + 300
    collect(collector, spe.ctx(["gamma"], target=OTHER))
    collect(collector, spe.ctx([]))  # TARGET lost every instance
    assert collector.instance_states.keys() == [(OTHER, "gamma")]


def test_instance_list_fetched_by_the_collector_is_used_for_forgetting() -> None:
    collector, spe = counted_once(ProfilesCollector)
    spe.instances = [{"instanceID": "beta", "status": "running"},
                     {"instanceID": "acme", "status": "stopped"}]
    spe.now = NOW + 240
    collect(collector, spe.ctx(known=False))
    assert sorted(collector.instance_states.keys()) == [(TARGET, "acme"), (TARGET, "beta")]

    spe.instances = [{"instanceID": "beta", "status": "running"}]
    spe.now = NOW + 360
    collect(collector, spe.ctx(known=False))
    assert collector.instance_states.keys() == [(TARGET, "beta")]


def test_without_an_instance_list_nothing_is_forgotten() -> None:
    collector, spe = counted_once(JobsCollector)
    spe.instances = SPEAPIError("down", function="GetInstances")
    spe.now = NOW + HOUR
    result = collect(collector, spe.ctx(known=False))
    assert not result.success and result.errors == ["GetInstances: down"]
    assert sorted(collector.instance_states.keys()) == [(TARGET, "acme"), (TARGET, "beta")]
