"""Runs the opt-in maintenance operations of the config (``maintenance:`` of a target).

Each entry becomes one APScheduler job (``max_instances=1``, ``coalesce``) in an executor of
its own, so an hours-long verification never takes a thread from the collectors. A run
calls the allow-listed SPE function and follows its long-running task to the end or to the
entry's deadline (then cancel-async). The async metrics come from the client's observer
(``exporter.telemetry``) like for any other long-running call; this module adds the skip
counter, the log lines and the per-entry status of the landing page.

"The same operation" is one function on one instance of one target: two entries that would
run it at once (or one entry whose previous run is still going) skip the newer run, count it
in ``mailstore_spe_maintenance_runs_skipped_total`` and log a warning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from exporter.config.cron import parse_crontab
from exporter.spe.client import SPEClient
from exporter.spe.envelope import Envelope
from exporter.spe.errors import SPEAsyncTimeoutError, SPEError, SPEPollingStoppedError
from exporter.telemetry import Telemetry

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from exporter.config.schema import MaintenanceSchedule, MaintenanceTask

log = logging.getLogger(__name__)

EXECUTOR = "maintenance"
JOB_PREFIX = "maintenance/"
# get-status long-poll of a maintenance run. Shorter than the client's default (5 s) so
# that shutdown, which can only act between two polls, stops a run within about a second.
POLL_MS = 1000
# How long shutdown waits for runs to notice it (and send cancel-async if configured).
STOP_WAIT_SECONDS = 2.5


@dataclass
class TaskStatus:
    """What the landing page shows about one maintenance entry."""

    name: str
    function: str
    schedule: str
    running: bool = False
    last_start: float | None = None
    last_result: str | None = None  # succeeded, failed, timeout, cancelled, stopped
    last_error: str | None = None
    skipped: int = 0
    next_run: float | None = None


@dataclass(frozen=True)
class OperationsView:
    """Long-running operations of one target, for the landing page."""

    running: dict[str, int]  # function -> calls being polled now (reads included)
    errors: dict[str, str]  # function -> error message of its last failed call
    tasks: list[TaskStatus] = field(default_factory=list)


@dataclass
class _Entry:
    target: str
    task: MaintenanceTask
    client: SPEClient
    telemetry: Telemetry
    status: TaskStatus

    @property
    def operation(self) -> tuple[str, str, str]:
        return (self.target, self.task.function, str(self.task.args.get("instanceID", "")))


def build_trigger(schedule: MaintenanceSchedule) -> BaseTrigger:
    if schedule.cron is not None:
        return parse_crontab(schedule.cron, schedule.timezone)
    assert schedule.interval is not None
    # The first run is one interval after start: a restart must not trigger maintenance.
    return IntervalTrigger(seconds=schedule.interval, timezone=UTC)


class MaintenanceRunner:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}  # job id -> entry
        self._telemetry: dict[str, Telemetry] = {}  # target -> its telemetry
        self._clients: dict[str, SPEClient] = {}  # target -> its client
        self._busy: set[tuple[str, str, str]] = set()  # operations running now
        self._lock = threading.Condition()
        self._stopping = False
        self._scheduler: BaseScheduler | None = None

    # -- set-up ----------------------------------------------------------------------------
    def add_target(
        self,
        target: str,
        client: SPEClient,
        telemetry: Telemetry,
        tasks: list[MaintenanceTask],
    ) -> None:
        self._telemetry[target] = telemetry
        self._clients[target] = client
        for index, task in enumerate(tasks):
            status = TaskStatus(task.describe(), task.function, task.schedule.describe())
            self._entries[f"{JOB_PREFIX}{target}/{index}"] = _Entry(
                target, task, client, telemetry, status
            )
            telemetry.maintenance_declared(task.function)

    def __len__(self) -> int:
        return len(self._entries)

    def owns(self, job_id: str) -> bool:
        return job_id.startswith(JOB_PREFIX)

    def schedule(self, scheduler: BaseScheduler) -> None:
        """Add one job per entry to ``scheduler`` (which must have the ``EXECUTOR``)."""
        self._scheduler = scheduler
        for job_id, entry in self._entries.items():
            scheduler.add_job(
                self.run,
                build_trigger(entry.task.schedule),
                args=(job_id,),
                id=job_id,
                name=f"{entry.target}/{entry.status.name}",
                executor=EXECUTOR,
                max_instances=1,
                coalesce=True,
            )
            log.info(
                "maintenance scheduled",
                extra={
                    "target": entry.target,
                    "operation": entry.status.name,
                    "schedule": entry.status.schedule,
                },
            )

    # -- the job ---------------------------------------------------------------------------
    def run(self, job_id: str) -> str | None:
        """One run of an entry; returns its result ("skipped" if it overlapped)."""
        entry = self._entries.get(job_id)
        if entry is None:
            return None
        with self._lock:
            if self._stopping:
                return None  # never start writing to SPE while the exporter stops
            overlap = entry.operation in self._busy
            if not overlap:
                self._busy.add(entry.operation)
                entry.status.running = True
                entry.status.last_start = self._clock()
        if overlap:
            self._skip(entry)
            return "skipped"
        result, error = "failed", "internal error"
        try:
            result, error = self._call(entry)
        finally:
            with self._lock:
                self._busy.discard(entry.operation)
                entry.status.running = False
                entry.status.last_result, entry.status.last_error = result, error
                self._lock.notify_all()
        return result

    def _call(self, entry: _Entry) -> tuple[str, str | None]:
        task, where = entry.task, {"target": entry.target, "operation": entry.status.name}
        went_async = False

        def on_progress(_env: Envelope) -> None:
            nonlocal went_async
            went_async = True

        log.info("maintenance run started", extra=where)
        started = time.monotonic()
        error: str | None = None
        try:
            entry.client.invoke(
                task.function,
                deadline=task.deadline,
                on_progress=on_progress,
                poll_ms=POLL_MS,
                cancel_on_shutdown=task.cancel_on_shutdown,
                **task.args,
            )
            result = "succeeded"
        except SPEPollingStoppedError as exc:
            result, error = "stopped", exc.message
        except SPEAsyncTimeoutError as exc:
            result, error = "timeout", exc.message
        except SPEError as exc:
            result = "cancelled" if getattr(exc, "status_code", None) == "cancelled" else "failed"
            error = exc.message
        except Exception as exc:  # a bug must not kill the scheduler thread silently
            log.exception("maintenance run raised an unexpected error", extra=where)
            result, error = "failed", f"internal error: {exc}"
        duration = round(time.monotonic() - started, 3)
        if error and not went_async and result != "stopped":
            # Long-running failures are logged by the telemetry; this one never got a token.
            log.warning("maintenance run failed", extra={**where, "error": error})
        log.info(
            "maintenance run finished", extra={**where, "result": result, "duration": duration}
        )
        return result, error

    def record_skip(self, job_id: str) -> None:
        """APScheduler refused a run because the entry's previous run is still going."""
        entry = self._entries.get(job_id)
        if entry is not None:
            self._skip(entry)

    def _skip(self, entry: _Entry) -> None:
        with self._lock:
            entry.status.skipped += 1
        entry.telemetry.maintenance_skipped(entry.task.function)
        log.warning(
            "maintenance run skipped: the same operation is still running",
            extra={"target": entry.target, "operation": entry.status.name},
        )

    # -- shutdown --------------------------------------------------------------------------
    def stop(self, timeout: float = STOP_WAIT_SECONDS, keep: frozenset[str] = frozenset()) -> bool:
        """Stop polling and wait (bounded) for runs to end; True if none is left running.

        Runs end at their next get-status answer (within ``POLL_MS``), after sending
        cancel-async if their entry says so; the server-side task is left alone otherwise.
        The clients of ``keep`` (targets a config reload carries over) are left alone.
        """
        with self._lock:
            self._stopping = True
        for target, client in self._clients.items():
            if target not in keep:
                client.stop_polling()
        deadline = time.monotonic() + timeout
        with self._lock:
            while any(operation[0] not in keep for operation in self._busy):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    # -- landing page ----------------------------------------------------------------------
    def operations(self) -> dict[str, OperationsView]:
        views: dict[str, OperationsView] = {}
        with self._lock:
            tasks: dict[str, list[TaskStatus]] = {}
            for job_id, entry in self._entries.items():
                entry.status.next_run = self._next_run(job_id)
                tasks.setdefault(entry.target, []).append(_copy(entry.status))
        for target, telemetry in self._telemetry.items():
            views[target] = OperationsView(
                telemetry.async_running(), telemetry.async_errors(), tasks.get(target, [])
            )
        return views

    def _next_run(self, job_id: str) -> float | None:
        if self._scheduler is None or self._stopping:
            return None
        job = self._scheduler.get_job(job_id)
        when: datetime | None = getattr(job, "next_run_time", None)
        return when.timestamp() if when is not None else None


def _copy(status: TaskStatus) -> TaskStatus:
    return TaskStatus(**vars(status))
