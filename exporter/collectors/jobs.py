"""Jobs collector: GetJobs + GetJobResults -> job state, schedule and runs.

``GetJobs`` gives per job whether it is enabled and its last/next run (the ``*Utc``
fields carry no ``Z``; they are UTC). ``GetJobResults`` is read over the same kind of
sliding windows as worker results (see ``ledger``), in UTC or a zero-offset zone SPE
lists (``results``) via ``timeZoneId`` (lower-case d, unlike GetWorkerResults), and
each ``jobResultId`` is counted once. Results of a job
id that GetJobs does not list are skipped without being marked as seen; a job that
disappears from GetJobs loses its series. An instance's state (ledger and counters) is
kept while the instance is in SPE's instance list, stopped or not, and dropped after the
first run that no longer lists it: an instance created again with the same id starts
from zero.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from exporter.collectors.base import CollectContext
from exporter.collectors.ledger import (
    HOUR,
    ResultLedger,
    ResultWindowCollector,
    WindowPolicy,
)
from exporter.collectors.parsing import records_of
from exporter.collectors.perinstance import InstanceStates, PerInstanceCollector
from exporter.collectors.results import FUNCTION as GET_TIME_ZONES
from exporter.collectors.results import read_results
from exporter.samples import Sample, SampleBuilder

GET_JOBS = "GetJobs"
GET_JOB_RESULTS = "GetJobResults"

# Only "succeeded" has been seen on a real server; "failed" is the obvious other one.
# Both start at 0 for every job; other values appear when SPE reports them.
JOB_RESULTS = ("succeeded", "failed")


@dataclass(frozen=True, slots=True)
class JobDef:
    job_id: str
    name: str | None
    action: str | None
    enabled: bool
    last_started: float | None
    last_completed: float | None
    next_start: float | None


@dataclass(frozen=True, slots=True)
class JobRun:
    run_id: str
    job_id: str
    action: str | None
    result: str
    started: float | None
    completed: float | None  # None: not finished yet


def parse_jobs(result: Any) -> dict[str, JobDef]:
    jobs = {}
    for rec in records_of(result, GET_JOBS):
        job = JobDef(
            job_id=rec.identifier("id"),
            name=rec.text_or_none("name"),
            action=rec.text_or_none("action"),
            enabled=rec.flag("enabled"),
            last_started=rec.timestamp_or_none("lastStartDateTimeUtc"),
            last_completed=rec.timestamp_or_none("lastCompleteDateTimeUtc"),
            next_start=rec.timestamp_or_none("nextStartDateTimeUtc"),
        )
        jobs[job.job_id] = job
    return jobs


def parse_job_results(result: Any) -> list[JobRun]:
    return [
        JobRun(
            run_id=rec.identifier("jobResultId"),
            job_id=rec.identifier("jobId"),
            action=rec.text_or_none("action"),
            result=rec.text("result"),
            started=rec.timestamp_or_none("startTime"),
            completed=rec.timestamp_or_none("completeTime"),
        )
        for rec in records_of(result, GET_JOB_RESULTS)
    ]


@dataclass
class InstanceJobs:
    """What the collector remembers about one instance between polls."""

    ledger: ResultLedger
    runs: dict[str, dict[str, int]] = field(default_factory=dict)  # job_id -> result -> n
    row_actions: dict[str, str] = field(default_factory=dict)  # fallback action label


def apply_job_runs(state: InstanceJobs, jobs: dict[str, JobDef], runs: list[JobRun]) -> None:
    ledger = state.ledger
    for job in jobs.values():
        # GetJobs tells each job's last run: its length counts for the overlap at once,
        # although the first poll reads only an hour of results.
        if job.last_started is not None and job.last_completed is not None:
            ledger.observe_run(job.last_started, job.last_completed)
    for run in runs:
        if run.completed is None:
            continue
        ledger.observe_run(run.started, run.completed)
        if run.job_id not in jobs or not ledger.is_new(run.run_id):
            continue
        ledger.mark(run.run_id, run.completed)
        if run.action:
            state.row_actions[run.job_id] = run.action
        if ledger.counts(run.completed):
            state.runs.setdefault(run.job_id, defaultdict(int))[run.result] += 1
    for job_id in [j for j in state.runs if j not in jobs]:
        del state.runs[job_id]
    for job_id in [j for j in state.row_actions if j not in jobs]:
        del state.row_actions[job_id]


def job_samples(
    target: str, instance_id: str, jobs: dict[str, JobDef], state: InstanceJobs
) -> list[Sample]:
    out = SampleBuilder(target)
    for job_id, job in jobs.items():
        action = job.action or state.row_actions.get(job_id)
        labels = {"instance_id": instance_id, "job_id": job_id, "job_name": job.name,
                  "action": action}
        out.add("mailstore_spe_job_enabled", job.enabled, **labels)
        if job.last_completed is not None:
            out.add("mailstore_spe_job_last_run_timestamp_seconds", job.last_completed, **labels)
        if job.next_start is not None:
            out.add("mailstore_spe_job_next_run_timestamp_seconds", job.next_start, **labels)
        counts = state.runs.get(job_id, {})
        for result in (*JOB_RESULTS, *sorted(set(counts) - set(JOB_RESULTS))):
            out.add("mailstore_spe_job_runs", counts.get(result, 0), instance_id=instance_id,
                    job_id=job_id, action=action, result=result)
    return out.samples


class JobsCollector(PerInstanceCollector, ResultWindowCollector):
    name = "jobs"
    interval = 120.0
    functions = (GET_JOBS, GET_JOB_RESULTS, GET_TIME_ZONES)

    def __init__(self, policy: WindowPolicy | None = None) -> None:
        # Last/next run come from GetJobs, so the first poll only needs the overlap.
        self.policy = policy or WindowPolicy(initial_lookback=HOUR)
        # Forgotten after a run once the instance is gone from SPE (see perinstance).
        self.instance_states: InstanceStates[InstanceJobs] = InstanceStates(
            lambda: InstanceJobs(ResultLedger(self.policy))
        )

    def _instance_state(self, target: str, instance_id: str) -> InstanceJobs:
        return self.instance_states.get(target, instance_id)

    def collect_instance(self, ctx: CollectContext, instance_id: str) -> list[Sample]:
        now = ctx.now()
        state = self._instance_state(ctx.target, instance_id)
        jobs = parse_jobs(ctx.client.call(GET_JOBS, instanceID=instance_id))
        runs, narrowest = read_results(
            ctx, state.ledger, now, instance_id, GET_JOB_RESULTS, "timeZoneId", parse_job_results
        )
        # Only now, with every window fetched and parsed, does the state change.
        apply_job_runs(state, jobs, runs)
        state.ledger.commit(now, narrowest)
        return job_samples(ctx.target, instance_id, jobs, state)
