"""Jobs collector: GetJobs gauges and GetJobResults counted once per jobResultId."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from collectors_testkit import NOW, FakeClient, collect, make_ctx, series

from exporter.collectors.jobs import JobsCollector, job_samples, parse_jobs
from exporter.collectors.parsing import parse_spe_datetime

RUNS = "mailstore_spe_job_runs_total"

JOBS = [
    {"id": 1, "name": "Process Retention Policies", "action": "ProcessRetentionPolicies",
     "owner": "admin", "creationDateTimeUtc": "2019-03-19T10:42:40",
     "lastStartDateTimeUtc": "2026-05-02T10:30:04",
     "lastCompleteDateTimeUtc": "2026-05-02T10:30:04",
     "nextStartDateTimeUtc": "2026-05-03T10:30:00", "enabled": True,
     "schedule": {"timeZoneId": "Pacific Standard Time", "time": "03:30:00"}},
    {"id": 2, "name": "Verify", "action": "VerifyStores", "owner": "admin",
     "creationDateTimeUtc": "2019-03-19T10:42:40", "lastStartDateTimeUtc": None,
     "lastCompleteDateTimeUtc": None, "nextStartDateTimeUtc": None, "enabled": False,
     "schedule": {"timeZoneId": "UTC", "time": "01:00:00"}},
]


def spe_time(offset: float) -> str:
    return datetime.fromtimestamp(NOW + offset, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def result_row(result_id: int, job_id: int, result: str, complete: float) -> dict[str, Any]:
    return {"jobResultId": result_id, "jobId": job_id, "action": "ProcessRetentionPolicies",
            "startTime": spe_time(complete - 1), "completeTime": spe_time(complete),
            "result": result}


class FakeJobsSPE:
    def __init__(self) -> None:
        self.jobs = [dict(j) for j in JOBS]
        self.rows: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []

    def job_results(self, **args: Any) -> Any:
        self.calls.append(args)
        lo = args["fromIncluding"].strftime("%Y-%m-%dT%H:%M:%S")
        hi = args["toExcluding"].strftime("%Y-%m-%dT%H:%M:%S")
        return [r for r in self.rows if lo <= r["completeTime"] < hi]

    def client(self) -> FakeClient:
        return FakeClient({"GetJobs": lambda **_: self.jobs, "GetJobResults": self.job_results})


def job_labels(job_id: str, result: str) -> tuple[tuple[str, str], ...]:
    return (("instance_id", "acme"), ("job_id", job_id),
            ("action", "ProcessRetentionPolicies" if job_id == "1" else "VerifyStores"),
            ("result", result))


def test_job_gauges() -> None:
    collector = JobsCollector()
    spe = FakeJobsSPE()
    samples = collect(collector, make_ctx(spe.client())).samples
    key = (("instance_id", "acme"), ("job_id", "1"), ("job_name", "Process Retention Policies"),
           ("action", "ProcessRetentionPolicies"))
    assert series(samples, "mailstore_spe_job_enabled")[key] == 1
    assert series(samples, "mailstore_spe_job_last_run_timestamp_seconds") == {
        key: parse_spe_datetime("2026-05-02T10:30:04")  # *Utc fields: UTC without Z
    }
    assert series(samples, "mailstore_spe_job_next_run_timestamp_seconds") == {
        key: NOW + 22 * 3600 + 30 * 60
    }
    assert series(samples, RUNS) == {
        job_labels("1", "succeeded"): 0, job_labels("1", "failed"): 0,
        job_labels("2", "succeeded"): 0, job_labels("2", "failed"): 0,
    }


def test_job_results_are_asked_in_utc_with_lower_case_d_and_counted_once() -> None:
    collector = JobsCollector()
    spe = FakeJobsSPE()
    spe.rows.append(result_row(2581, 1, "succeeded", -600))  # before the exporter started
    clock = [NOW]
    ctx = make_ctx(spe.client(), now=lambda: clock[0])
    collect(collector, ctx)
    assert spe.calls[0] == {"instanceID": "acme", "fromIncluding": datetime(2026, 5, 2, 11),
                            "toExcluding": datetime(2026, 5, 2, 12), "timeZoneId": "UTC"}

    spe.rows.append(result_row(2582, 1, "succeeded", 60))
    spe.rows.append(result_row(2583, 1, "failedHard", 70))
    clock[0] = NOW + 120
    collect(collector, ctx)
    clock[0] = NOW + 240
    result = collect(collector, ctx)
    assert len(spe.calls) == 3 and result.success
    runs = series(result.samples, RUNS)
    assert runs[job_labels("1", "succeeded")] == 1  # 2581 predates the start; 2582 once
    assert runs[job_labels("1", "failedHard")] == 1


def test_vanished_job_disappears() -> None:
    collector = JobsCollector()
    spe = FakeJobsSPE()
    collect(collector, make_ctx(spe.client()))
    spe.jobs = spe.jobs[:1]
    samples = collect(collector, make_ctx(spe.client(), now=lambda: NOW + 120)).samples
    assert not [s for s in samples if ("job_id", "2") in s.labels]


def test_malformed_jobs_fail_the_instance_clearly() -> None:
    client = FakeClient({"GetJobs": [{**JOBS[0], "enabled": "yes"}], "GetJobResults": []})
    result = collect(JobsCollector(), make_ctx(client))
    assert result.instance_outcomes == {"acme": False}
    assert result.errors == [
        "instance acme: GetJobs: result[0].enabled: expected true or false, got str 'yes'"
    ]
    assert client.calls_of("GetJobResults") == []


def test_job_samples_is_pure_over_parsed_jobs() -> None:
    collector = JobsCollector()
    state = collector._instance_state("spe1", "acme")
    samples = job_samples("spe1", "acme", parse_jobs(JOBS[1:]), state)
    assert series(samples, "mailstore_spe_job_last_run_timestamp_seconds") == {}
    assert series(samples, "mailstore_spe_job_enabled") == {
        (("instance_id", "acme"), ("job_id", "2"), ("job_name", "Verify"),
         ("action", "VerifyStores")): 0
    }


def test_the_last_run_in_getjobs_teaches_the_overlap_at_once() -> None:
    long_job = {**JOBS[0], "lastStartDateTimeUtc": "2026-05-02T03:30:00",
                "lastCompleteDateTimeUtc": "2026-05-02T07:30:00"}  # four hours
    client = FakeClient({"GetJobs": [long_job], "GetJobResults": []})
    collector = JobsCollector()
    collect(collector, make_ctx(client))
    ledger = collector._instance_state("spe1", "acme").ledger
    assert ledger.longest_run == 4 * 3600
    assert ledger.overlap == 4 * 3600 + 600
