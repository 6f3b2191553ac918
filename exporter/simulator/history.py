"""Profile runs (worker results) and job runs, derived from their schedules.

Nothing is stored: run number ``k`` of a schedule starts at ``k * interval + offset`` (epoch
seconds), so any window [from, to) can be answered exactly and ids stay stable however the
windows overlap. Ids are ``k * RUN_ID_STRIDE + slot`` with a per-instance slot for each
profile/job (the temporary-runs series has its own slot), so they never collide.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, tzinfo

from .scenario import RUN_ID_STRIDE, TEMPORARY_RUN_SLOT, JobSpec, ProfileSpec, TemporaryRunSpec
from .timezones import local_dates_between


@dataclass(frozen=True)
class Run:
    id: int
    k: int
    start: float
    complete: float


def _k_range(
    interval_s: int, offset_s: int, duration_s: int, t_from: float, t_to: float, now: float,
    by_start: bool,
) -> range:
    """Run numbers k in the window and completed by ``now``.

    The window filters on completion time (``t_from <= complete < t_to``) or, with
    ``by_start``, on start time (``t_from <= start < t_to``); either way only finished runs
    are listed (assumed: a worker result is written when the run ends).
    """
    shift = offset_s + (0 if by_start else duration_s)
    first = math.ceil((t_from - shift) / interval_s)
    last_in_window = math.ceil((t_to - shift) / interval_s) - 1
    last_done = math.floor((now - duration_s - offset_s) / interval_s)
    return range(first, min(last_in_window, last_done) + 1)


def _interval_runs(
    interval_s: int,
    offset_s: int,
    duration_s: int,
    slot: int,
    t_from: float,
    t_to: float,
    now: float,
    by_start: bool = False,
) -> Iterator[Run]:
    for k in _k_range(interval_s, offset_s, duration_s, t_from, t_to, now, by_start):
        start = k * interval_s + offset_s
        yield Run(id=k * RUN_ID_STRIDE + slot, k=k, start=start, complete=start + duration_s)


def count_interval_runs(
    interval_s: int, offset_s: int, duration_s: int, t_from: float, t_to: float, now: float,
    by_start: bool = False,
) -> int:
    return len(_k_range(interval_s, offset_s, duration_s, t_from, t_to, now, by_start))


def profile_runs(
    profile: ProfileSpec, slot: int, t_from: float, t_to: float, now: float,
    by_start: bool = False,
):
    if profile.interval_minutes is None:
        return iter(())
    return _interval_runs(
        profile.interval_minutes * 60,
        profile.offset_minutes * 60,
        profile.duration_seconds,
        slot,
        t_from,
        t_to,
        now,
        by_start,
    )


def temporary_runs(
    spec: TemporaryRunSpec, t_from: float, t_to: float, now: float, by_start: bool = False
):
    return _interval_runs(
        spec.interval_minutes * 60,
        spec.offset_minutes * 60,
        spec.duration_seconds,
        TEMPORARY_RUN_SLOT,
        t_from,
        t_to,
        now,
        by_start,
    )


def count_profile_runs(
    profile: ProfileSpec, t_from: float, t_to: float, now: float, by_start: bool = False
) -> int:
    if profile.interval_minutes is None:
        return 0
    return count_interval_runs(
        profile.interval_minutes * 60,
        profile.offset_minutes * 60,
        profile.duration_seconds,
        t_from,
        t_to,
        now,
        by_start,
    )


def job_runs(
    job: JobSpec, slot: int, zone: tzinfo, t_from: float, t_to: float, now: float,
    by_start: bool = False,
):
    """Runs of an enabled job in [t_from, t_to) (by completion or start) finished by ``now``."""
    if not job.enabled:
        return
    if job.interval_minutes is not None:
        yield from _interval_runs(
            job.interval_minutes * 60, 0, job.duration_seconds, slot, t_from, t_to, now, by_start
        )
        return
    assert job.time is not None
    at = time.fromisoformat(job.time)
    for day in local_dates_between(t_from - job.duration_seconds, t_to, zone):
        start = datetime.combine(day.date(), at, tzinfo=zone).timestamp()
        complete = start + job.duration_seconds
        filtered = start if by_start else complete
        if t_from <= filtered < t_to and complete <= now:
            k = day.date().toordinal()
            yield Run(id=k * RUN_ID_STRIDE + slot, k=k, start=start, complete=complete)


def next_job_start(job: JobSpec, zone: tzinfo, now: float) -> float | None:
    if not job.enabled:
        return None
    if job.interval_minutes is not None:
        interval = job.interval_minutes * 60
        return (math.floor(now / interval) + 1) * interval
    assert job.time is not None
    at = time.fromisoformat(job.time)
    for day in local_dates_between(now, now + 2 * 86400, zone):
        start = datetime.combine(day.date(), at, tzinfo=zone).timestamp()
        if start > now:
            return start
    return None  # pragma: no cover - a daily job always has a start within two days


def last_job_run(job: JobSpec, slot: int, zone: tzinfo, now: float) -> Run | None:
    lookback = (job.interval_minutes or 1440) * 60 * 2 + job.duration_seconds + 86400
    runs = list(job_runs(job, slot, zone, now - lookback, now + 1, now))
    return max(runs, key=lambda r: r.complete) if runs else None


def pick(pattern: list, k: int):
    """The k-th element of a repeating pattern (results, items archived)."""
    return pattern[k % len(pattern)]


def unsorted_key(run_id: int) -> str:
    """A stable but time-unrelated order: real GetWorkerResults rows are not sorted by time."""
    return hashlib.blake2s(str(run_id).encode(), digest_size=4).hexdigest()
