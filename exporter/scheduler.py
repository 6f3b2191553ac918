"""Drives the collectors: one APScheduler job per (target, collector).

Each job runs at its collector's interval, the first run at start. ``max_instances=1``
and ``coalesce=True``: a run that would overlap the previous one is skipped and counted
in ``mailstore_spe_collector_runs_skipped_total``. A run builds a fresh result and
swaps it into the snapshot store; it never touches what other collectors produced.
The opt-in maintenance operations run as jobs of the same scheduler, in an executor of
their own (``exporter.maintenance``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor as APSThreadPool
from apscheduler.schedulers.background import BackgroundScheduler

from exporter.allocator import release_free_memory
from exporter.collectors import ALL_COLLECTORS
from exporter.collectors.access_ledger import AccessLedger
from exporter.collectors.base import CollectContext, Collector, CollectResult, InstanceRef
from exporter.collectors.ledger import DAY, ResultWindowCollector
from exporter.health import HealthTable
from exporter.maintenance import EXECUTOR as MAINTENANCE_EXECUTOR
from exporter.maintenance import MaintenanceRunner
from exporter.samples import SampleSink
from exporter.snapshot import RunSink, SnapshotStore
from exporter.spe.client import SPEClient
from exporter.telemetry import Telemetry

if TYPE_CHECKING:
    from exporter.config.schema import MaintenanceTask

log = logging.getLogger(__name__)


# How often stale data is looked for (see max_data_age).
EXPIRY_CHECK_SECONDS = 5.0


@dataclass
class CollectorPlan:
    name: str
    interval: float
    max_age: float


@dataclass
class TargetRuntime:
    """Everything that belongs to one SPE server while the exporter runs."""

    name: str
    client: SPEClient
    telemetry: Telemetry
    instance_filter: str
    concurrency: int
    plans: dict[str, CollectorPlan]
    collectors: dict[str, Collector] = field(default_factory=dict)
    known_instances: list[InstanceRef] | None = None
    executor: ThreadPoolExecutor | None = None
    maintenance: list[MaintenanceTask] = field(default_factory=list)  # opt-in SPE writes
    result_max_overlap: float = DAY  # config result_windows.max_overlap
    access: AccessLedger = field(init=False)  # service provider access of its instances

    def __post_init__(self) -> None:
        self.access = AccessLedger(self.name)
        for name in self.plans:
            collector = self.collectors[name] = ALL_COLLECTORS[name]()
            if isinstance(collector, ResultWindowCollector):
                collector.limit_overlap(self.result_max_overlap)
        # One pool per target bounds the per-instance calls of all its collectors together.
        self.executor = ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix=f"spe-{self.name}"
        )

    def context(self, sink: SampleSink, now: Callable[[], float]) -> CollectContext:
        """What a collector run of this target gets: client, limits, instance list, sink."""
        return CollectContext(
            target=self.name,
            client=self.client,
            instance_filter=self.instance_filter,
            concurrency=self.concurrency,
            known_instances=self.known_instances,
            now=now,
            executor=self.executor,
            sink=sink,
            access=self.access,
        )

    def close(self) -> None:
        self.client.close()
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)


def _summarise(result: CollectResult) -> str | None:
    if result.success:
        return None
    if not result.errors:
        return "failed"
    first = result.errors[0]
    more = len(result.errors) - 1
    return f"{first} (and {more} more)" if more else first


class Poller:
    def __init__(
        self,
        store: SnapshotStore,
        health: HealthTable,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.health = health
        self.clock = clock
        self.targets: dict[str, TargetRuntime] = {}
        self._scheduler: BackgroundScheduler | None = None
        self._running = threading.Event()
        # Set by shutdown(): results of runs still in flight are discarded, so a replaced
        # poller (config reload) never records the errors of its closed connections; except
        # for the targets a reload carries over unchanged (their connections stay open).
        self._retired = False
        self._carried_over: frozenset[str] = frozenset()
        self.maintenance = MaintenanceRunner(clock)

    # -- set-up ----------------------------------------------------------------------------
    def add_target(self, runtime: TargetRuntime, all_collectors: dict[str, float]) -> None:
        """Register a target; ``all_collectors`` maps every known collector to its interval
        (disabled ones included, so the landing page can show them)."""
        self.targets[runtime.name] = runtime
        self.store.add_source(runtime.telemetry)
        self.maintenance.add_target(
            runtime.name, runtime.client, runtime.telemetry, runtime.maintenance
        )
        for name, interval in all_collectors.items():
            self.health.configure(runtime.name, name, interval, enabled=name in runtime.plans)

    def start(self, next_runs: dict[str, datetime] | None = None) -> None:
        """Schedule every job; ``next_runs`` (job id -> time) continues the schedules of a
        poller this one replaces, other jobs run at once."""
        next_runs = next_runs or {}
        jobs = sum(len(rt.plans) for rt in self.targets.values())
        self._scheduler = BackgroundScheduler(
            executors={
                "default": APSThreadPool(max_workers=max(4, jobs + 1)),
                # Maintenance runs last for hours: their own threads, one per entry.
                MAINTENANCE_EXECUTOR: APSThreadPool(max_workers=max(1, len(self.maintenance))),
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )
        self._scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        for rt in self.targets.values():
            # The instance list feeds the per-instance collectors: schedule it first.
            for name in sorted(rt.plans, key=lambda n: n != "instances"):
                plan = rt.plans[name]
                self._scheduler.add_job(
                    self.run_collector,
                    "interval",
                    seconds=plan.interval,
                    args=(rt.name, name),
                    id=f"{rt.name}/{name}",
                    name=f"{rt.name}/{name}",
                    next_run_time=next_runs.get(f"{rt.name}/{name}") or _now_utc(),
                )
        self._scheduler.add_job(
            self.expire, "interval", seconds=EXPIRY_CHECK_SECONDS, id="expire", name="expire"
        )
        self.maintenance.schedule(self._scheduler)
        self._scheduler.start()
        self._running.set()

    def running(self) -> bool:
        return self._running.is_set()

    def next_run_times(self) -> dict[str, datetime]:
        """Job id -> next run time of the collector jobs (to continue them after a reload)."""
        if self._scheduler is None or not self._scheduler.running:
            return {}
        return {
            job.id: job.next_run_time
            for job in self._scheduler.get_jobs()
            if "/" in job.id and not self.maintenance.owns(job.id) and job.next_run_time
        }

    def shutdown(self, keep: frozenset[str] = frozenset()) -> None:
        """Stop scheduling and stop in-flight polls promptly (no waiting for SPE).

        The runtimes of ``keep`` (targets a config reload carries over to a new poller)
        stay open: their clients, pools and collector state live on in the new poller."""
        self._running.clear()
        self._carried_over = keep
        self._retired = True
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        # Give maintenance runs a moment to stop polling (and to send cancel-async where
        # configured) before the connections close under them.
        self.maintenance.stop(keep=keep)
        for rt in self.targets.values():
            if rt.name not in keep:
                rt.close()

    def _on_skipped(self, event: JobExecutionEvent) -> None:
        if self.maintenance.owns(event.job_id):
            self.maintenance.record_skip(event.job_id)
            return
        target, _, collector = event.job_id.partition("/")
        log.warning(
            "collector run skipped: the previous run is still going",
            extra={"target": target, "collector": collector},
        )
        self.health.record_skip(target, collector)

    # -- the job ---------------------------------------------------------------------------
    def run_collector(self, target: str, name: str) -> CollectResult | None:
        rt = self.targets.get(target)
        if rt is None or name not in rt.collectors:
            return None
        plan = rt.plans[name]
        sink = RunSink()
        ctx = rt.context(sink, self.clock)
        started = time.monotonic()
        self.health.record_start(rt.name, name, started)
        try:
            result = rt.collectors[name].collect(ctx)
        except Exception as exc:
            log.exception(
                "collector raised an unexpected error", extra={"target": target, "collector": name}
            )
            result = CollectResult(success=False, errors=[f"internal error: {exc}"])
        if self._retired and target not in self._carried_over:
            return None
        duration = time.monotonic() - started
        finished = self.clock()
        if duration > plan.interval:
            log.warning(
                "collector run took longer than its interval",
                extra={"target": target, "collector": name, "duration": round(duration, 3),
                       "interval": plan.interval},
            )  # fmt: skip
        try:
            # Inside the error handling: a result that cannot be stored (rendered, swapped)
            # is a failed run, never an "ok" run whose series silently vanish.
            self._store_result(rt.name, name, result, sink, finished, plan.max_age)
        except Exception as exc:
            where = {"target": target, "collector": name}
            log.exception("storing the collector's results failed", extra=where)
            result = CollectResult(
                success=False, errors=[f"internal error while storing the results: {exc}"]
            )
        if name == "instances" and result.success and result.instances is not None:
            rt.known_instances = list(result.instances)
            rt.access.forget_absent({ref.instance_id for ref in result.instances})
        self.health.record_run(
            rt.name,
            name,
            success=result.success,
            duration=duration,
            finished_at=finished,
            error=_summarise(result),
            # A run whose instances were all skipped (access off) still replaces the
            # outcomes; a run that failed before any instance keeps the previous ones.
            instance_outcomes=(
                result.instance_outcomes if result.instance_outcomes or result.access_off
                else None
            ),
            notes=result.notes,
            access_off=len(result.access_off),
        )
        release_free_memory()
        return result

    def _store_result(
        self,
        target: str,
        name: str,
        result: CollectResult,
        sink: RunSink,
        finished: float,
        max_age: float,
    ) -> None:
        partial = any(result.instance_outcomes.values())
        if result.success or partial:
            failed = [iid for iid, ok in result.instance_outcomes.items() if not ok]
            self.store.swap(
                target, name, sink, finished, failed_instances=failed, max_age=max_age
            )
        # A run that failed as a whole keeps the previous data until it is too old.

    def expire(self) -> None:
        def max_age(target: str, collector: str) -> float:
            rt = self.targets.get(target)
            if rt is None or collector not in rt.plans:
                return 0.0  # the target or collector is gone: drop its data
            return rt.plans[collector].max_age

        for target, collector in self.store.expire(self.clock(), max_age):
            log.info(
                "dropped data older than max_data_age",
                extra={"target": target, "collector": collector},
            )

    def run_all_once(self) -> None:
        """Run every collector of every target once, synchronously (tests, demo)."""
        for rt in self.targets.values():
            for name in sorted(rt.plans, key=lambda n: n != "instances"):
                self.run_collector(rt.name, name)


def _now_utc():
    from datetime import UTC, datetime

    return datetime.now(UTC)
