"""Profiles collector: GetProfiles + GetWorkerResults -> archiving profile runs.

Per running instance and poll:

1. ``GetProfiles(raw=true)`` gives the live profiles (id -> name, automatic).
2. ``GetWorkerResults`` over sliding windows (``ledger.ResultLedger``: overlap growing
   with the longest run, windows split when SPE has too many rows), asked in UTC or a
   zero-offset zone SPE lists (``results``; ``timeZoneID`` with a capital D; never
   ``profileID`` or ``userName``, which SPE rejects when 0 or empty).
3. Each worker result id is applied once: counters by result and items archived (for
   runs that completed after the exporter's first poll, see ``ledger``), and the newest
   run per profile for the last-run gauges (from any run seen, so they are known at
   once after a start: the first poll reads ``initial_lookback``, default one day).

Runs without ``profileId`` (temporary/interactive runs) are counted under
``profile_id=""``. A run of a profile id that GetProfiles does not list is skipped
without being marked as seen: it is looked at again while it stays in the window (a
profile created between the two calls) and otherwise forgotten (a deleted profile).
A profile that disappears from GetProfiles loses all its series, counters included.
Counters live in the collector, so a failed poll of an instance omits its series but
never makes them go backwards. An instance's state (ledger and counters) is kept while
the instance is in SPE's instance list, stopped or not, and dropped after the first run
that no longer lists it: an instance created again with the same id starts from zero.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from exporter.collectors.base import CollectContext
from exporter.collectors.ledger import (
    DAY,
    ResultLedger,
    ResultWindowCollector,
    WindowPolicy,
)
from exporter.collectors.parsing import records_of
from exporter.collectors.perinstance import InstanceStates, PerInstanceCollector
from exporter.collectors.results import FUNCTION as GET_TIME_ZONES
from exporter.collectors.results import read_results
from exporter.samples import Sample, SampleBuilder

GET_PROFILES = "GetProfiles"
GET_WORKER_RESULTS = "GetWorkerResults"

RUN_RESULTS = ("succeeded", "completedWithErrors", "failed", "cancelled")
SUCCEEDED = "succeeded"
TEMPORARY = ""  # profile_id of runs without a profile


@dataclass(frozen=True, slots=True)
class ProfileDef:
    profile_id: str
    name: str | None
    automatic: bool


@dataclass(frozen=True, slots=True)
class WorkerRun:
    run_id: str
    profile_id: str  # TEMPORARY if the row has no profileId
    profile_name: str | None
    result: str
    items_archived: float
    started: float | None
    completed: float | None  # None: not finished yet


def parse_profiles(result: Any) -> dict[str, ProfileDef]:
    profiles = {}
    for rec in records_of(result, GET_PROFILES):
        execution = rec.record_or_none("serverSideExecution")
        automatic = execution.flag_or_none("automatic") if execution else None
        profile = ProfileDef(rec.identifier("id"), rec.text_or_none("name"), bool(automatic))
        profiles[profile.profile_id] = profile
    return profiles


def parse_worker_results(result: Any) -> list[WorkerRun]:
    runs = []
    for rec in records_of(result, GET_WORKER_RESULTS):
        runs.append(
            WorkerRun(
                run_id=rec.identifier("id"),
                profile_id=rec.identifier_or_none("profileId") or TEMPORARY,
                profile_name=rec.text_or_none("profileName"),
                result=rec.text("result"),
                items_archived=rec.number_or_none("itemsArchived") or 0.0,
                started=rec.timestamp_or_none("startTime"),
                completed=rec.timestamp_or_none("completeTime"),
            )
        )
    return runs


@dataclass
class ProfileStats:
    runs: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # result -> n
    items_archived: float = 0.0
    last_completed: float | None = None
    last_duration: float | None = None
    last_result: str | None = None
    last_success: float | None = None
    row_name: str | None = None  # profileName of the newest row, fallback for the label

    def observe(self, run: WorkerRun, completed: float, *, count: bool) -> None:
        if count:
            self.runs[run.result] += 1
            self.items_archived += run.items_archived
        if self.last_completed is None or completed > self.last_completed:
            self.last_completed = completed
            self.last_result = run.result
            self.last_duration = completed - run.started if run.started is not None else None
            self.row_name = run.profile_name or self.row_name
        if run.result == SUCCEEDED and (self.last_success is None or completed > self.last_success):
            self.last_success = completed


@dataclass
class InstanceProfiles:
    """What the collector remembers about one instance between polls."""

    ledger: ResultLedger
    stats: dict[str, ProfileStats] = field(default_factory=dict)  # profile_id -> stats


def apply_runs(
    state: InstanceProfiles, profiles: dict[str, ProfileDef], runs: list[WorkerRun]
) -> None:
    """Fold newly seen runs into the state and drop profiles that no longer exist."""
    ledger = state.ledger
    for run in runs:
        if run.completed is None:
            continue  # still running: counted once it has completed
        ledger.observe_run(run.started, run.completed)
        if run.profile_id != TEMPORARY and run.profile_id not in profiles:
            continue
        if not ledger.is_new(run.run_id):
            continue
        ledger.mark(run.run_id, run.completed)
        stats = state.stats.setdefault(run.profile_id, ProfileStats())
        stats.observe(run, run.completed, count=ledger.counts(run.completed))
    for profile_id in list(state.stats):
        if profile_id != TEMPORARY and profile_id not in profiles:
            del state.stats[profile_id]


def profile_samples(
    target: str, instance_id: str, profiles: dict[str, ProfileDef], state: InstanceProfiles
) -> list[Sample]:
    out = SampleBuilder(target)
    for profile_id in (TEMPORARY, *profiles):
        profile = profiles.get(profile_id)
        stats = state.stats.get(profile_id) or ProfileStats()
        name = (profile.name if profile else None) or stats.row_name
        if profile_id == TEMPORARY:
            name = ""
        labels = {"instance_id": instance_id, "profile_id": profile_id, "profile_name": name}
        # Known results start at 0 so increase() sees the first run of each result.
        for result in (*RUN_RESULTS, *sorted(set(stats.runs) - set(RUN_RESULTS))):
            out.add("mailstore_spe_profile_runs", stats.runs.get(result, 0), **labels,
                    result=result)
        out.add("mailstore_spe_profile_items_archived", stats.items_archived, **labels)
        if stats.last_completed is not None:
            out.add("mailstore_spe_profile_last_run_timestamp_seconds", stats.last_completed,
                    **labels)
            if stats.last_duration is not None:
                out.add("mailstore_spe_profile_last_run_duration_seconds", stats.last_duration,
                        **labels)
            out.state_set("mailstore_spe_profile_last_run_result", "result", RUN_RESULTS,
                          stats.last_result, **labels)
        if stats.last_success is not None:
            out.add("mailstore_spe_profile_last_success_timestamp_seconds", stats.last_success,
                    **labels)
        if profile is not None:
            out.add("mailstore_spe_profile_automatic", profile.automatic, **labels)
    return out.samples


class ProfilesCollector(PerInstanceCollector, ResultWindowCollector):
    name = "profiles"
    interval = 120.0
    functions = (GET_PROFILES, GET_WORKER_RESULTS, GET_TIME_ZONES)

    def __init__(self, policy: WindowPolicy | None = None) -> None:
        self.policy = policy or WindowPolicy(initial_lookback=DAY)
        # Forgotten after a run once the instance is gone from SPE (see perinstance).
        self.instance_states: InstanceStates[InstanceProfiles] = InstanceStates(
            lambda: InstanceProfiles(ResultLedger(self.policy))
        )

    def _instance_state(self, target: str, instance_id: str) -> InstanceProfiles:
        return self.instance_states.get(target, instance_id)

    def collect_instance(self, ctx: CollectContext, instance_id: str) -> list[Sample]:
        now = ctx.now()
        state = self._instance_state(ctx.target, instance_id)
        profiles = parse_profiles(ctx.client.call(GET_PROFILES, instanceID=instance_id, raw=True))
        runs, narrowest = read_results(
            ctx, state.ledger, now, instance_id,
            GET_WORKER_RESULTS, "timeZoneID", parse_worker_results,
        )
        # Only now, with every window fetched and parsed, does the state change.
        apply_runs(state, profiles, runs)
        state.ledger.commit(now, narrowest)
        return profile_samples(ctx.target, instance_id, profiles, state)
