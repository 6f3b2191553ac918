"""Health of the exporter's polls: per target and per collector.

Produces ``mailstore_spe_up``, the ``mailstore_spe_collector_*`` series,
``mailstore_spe_instance_collect_success`` and ``mailstore_spe_exporter_build_info``, and
keeps the last error of every collector for the landing page and for logging state
changes (one log line when a collector starts failing, changes its error, or recovers).
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass

from exporter import __version__, groups
from exporter.exposition import Blocks, render_blocks
from exporter.gzipstitch import Block, concat_blocks, pack_pieces
from exporter.revision import revision
from exporter.samples import SampleBuilder
from exporter.snapshot import CachedBlockSource

log = logging.getLogger(__name__)

# The collectors whose success decides mailstore_spe_up: they poll the management server.
UP_COLLECTORS = ("service", "environment")


@dataclass
class CollectorStatus:
    interval: float
    enabled: bool = True
    runs: int = 0
    success: bool | None = None
    duration: float | None = None
    last_run: float | None = None
    last_success: float | None = None
    skipped: int = 0
    error: str | None = None
    notes: tuple[str, ...] = ()  # the latest notes a run gave (SPE's dashboard messages)
    access_off: int = 0  # instances the last run skipped: service provider access off
    running_since: float | None = None  # start of the run in flight (monotonic clock)

    def state(self, now: float) -> str:
        """The status page's word for this collector; a run longer than the interval is
        never "ok" (its data is older than the interval promises)."""
        if not self.enabled:
            return "disabled"
        if self.running_since is not None and now - self.running_since > self.interval:
            return f"running for {now - self.running_since:.0f}s, over its interval"
        if self.success is None:
            return "pending"
        if not self.success:
            return "failed"
        if self.duration is not None and self.duration > self.interval:
            return "slow: last run took longer than its interval"
        return "ok"


class HealthTable(CachedBlockSource):
    def __init__(self) -> None:
        super().__init__()
        self._collectors: dict[tuple[str, str], CollectorStatus] = {}
        self._up: dict[str, tuple[float, bool]] = {}  # target -> (when, up)
        self._targets: list[str] = []
        # The per-instance outcome lines of each (target, collector), kept deflated when
        # large (thousands of instances), and their concatenation in key order, rebuilt
        # only when outcomes change (without inflating anything): the other health changes
        # reuse the same block, and a gzip scrape uses its segments as they are.
        self._outcome_lines: dict[str, Block] = {}
        self._outcome_block: Block = b""
        self._in_flight: set[tuple[str, str]] = set()  # (target, collector) runs going on
        self._reload_ok = True
        self._reload_success_at: float | None = None

    def configure(self, target: str, collector: str, interval: float, enabled: bool) -> None:
        with self._lock:
            if target not in self._targets:
                self._targets.append(target)
            status = self._collectors.get((target, collector))
            if status is None:
                self._collectors[(target, collector)] = CollectorStatus(interval, enabled)
            else:
                status.interval, status.enabled = interval, enabled
            if not enabled:
                # A run a reload cut short records nothing: a disabled collector is idle.
                self._in_flight.discard((target, collector))
            self._version += 1

    def record_config_load(self, ok: bool, at: float) -> None:
        """A config was loaded (at start or on reload): ``ok`` False keeps the old one."""
        with self._lock:
            self._reload_ok = ok
            if ok:
                self._reload_success_at = at
            self._version += 1

    def remove_target(self, target: str) -> None:
        with self._lock:
            self._targets = [t for t in self._targets if t != target]
            for key in [k for k in self._collectors if k[0] == target]:
                del self._collectors[key]
                self._in_flight.discard(key)
            self._up.pop(target, None)
            for key in [k for k in self._outcome_lines if _group_target(k) == target]:
                del self._outcome_lines[key]
            self._join_outcome_lines()
            self._version += 1

    def _join_outcome_lines(self) -> None:
        lines = self._outcome_lines
        self._outcome_block = concat_blocks([lines[key] for key in sorted(lines)])

    def record_start(self, target: str, collector: str, started: float) -> None:
        """A run began (``started`` on the monotonic clock)."""
        with self._lock:
            status = self._collectors.get((target, collector))
            if status is not None:
                status.running_since = started
                self._in_flight.add((target, collector))

    def busy(self) -> bool:
        """True while any collector run is in progress. No lock: scrapes ask it while the
        polls run (``exporter.exposition.ExpositionCache``)."""
        return bool(self._in_flight)

    def record_run(
        self,
        target: str,
        collector: str,
        *,
        success: bool,
        duration: float,
        finished_at: float,
        error: str | None,
        instance_outcomes: dict[str, bool] | None = None,
        notes: list[str] | None = None,
        access_off: int = 0,
    ) -> None:
        outcome_lines = None
        if instance_outcomes is not None:
            # Rendered (and at thousands of instances compressed) before the lock is
            # taken: scrapes read this table while the polls run.
            lines = SampleBuilder(target)
            for iid, ok in sorted(instance_outcomes.items()):
                lines.add(OUTCOME_FAMILY, ok, instance_id=iid, collector=collector)
            text = render_blocks(lines.samples).get(OUTCOME_FAMILY, b"")
            outcome_lines = pack_pieces([text], len(text), groups.PACK_ABOVE)
        with self._lock:
            status = self._collectors.get((target, collector))
            if status is None:
                return  # the target was removed by a reload while this run was going
            if notes is not None:
                status.notes = tuple(notes)
            previous_error, previous_success = status.error, status.success
            status.running_since = None
            self._in_flight.discard((target, collector))
            status.runs += 1
            status.success = success
            status.duration = duration
            status.last_run = finished_at
            status.error = None if success else (error or "unknown error")
            status.access_off = access_off
            if success:
                status.last_success = finished_at
            if outcome_lines is not None:
                key = _group_key(target, collector)
                if outcome_lines:
                    self._outcome_lines[key] = outcome_lines
                else:
                    self._outcome_lines.pop(key, None)
                self._join_outcome_lines()
            if collector in UP_COLLECTORS:
                # Up only while the latest run of every management-server poll succeeded:
                # with one failing and one succeeding, "the last one to finish" would flip
                # mailstore_spe_up at every interval, in whatever order the jobs ran.
                up = success and not any(
                    c in UP_COLLECTORS and s.enabled and s.success is False
                    for (tg, c), s in self._collectors.items()
                    if tg == target
                )
                self._up[target] = (finished_at, up)
            elif not any(
                c in UP_COLLECTORS and s.enabled
                for (tg, c), s in self._collectors.items()
                if tg == target
            ):
                self._up[target] = (finished_at, success)
            self._version += 1
        self._log_transition(target, collector, previous_success, previous_error, success, error)

    def record_skip(self, target: str, collector: str) -> None:
        with self._lock:
            status = self._collectors.get((target, collector))
            if status is not None:
                status.skipped += 1
                self._version += 1

    @staticmethod
    def _log_transition(
        target: str,
        collector: str,
        was_ok: bool | None,
        old_error: str | None,
        ok: bool,
        error: str | None,
    ) -> None:
        # One line per state change: no flood while a fault lasts.
        if ok and was_ok is False:
            log.info("collector recovered", extra={"target": target, "collector": collector})
        elif not ok and (was_ok is not False or error != old_error):
            log.warning(
                "collector failed",
                extra={"target": target, "collector": collector, "error": error},
            )

    # -- queries for the landing page and readiness --------------------------------------
    def snapshot(self) -> dict[str, dict[str, CollectorStatus]]:
        with self._lock:
            out: dict[str, dict[str, CollectorStatus]] = {t: {} for t in self._targets}
            for (target, collector), status in self._collectors.items():
                out.setdefault(target, {})[collector] = CollectorStatus(**vars(status))
            return out

    def up(self, target: str) -> bool | None:
        with self._lock:
            entry = self._up.get(target)
            return None if entry is None else entry[1]

    def _render_blocks(self) -> Blocks:
        out = SampleBuilder(None)  # series of every target, and of none
        out.add(
            "mailstore_spe_exporter_build_info", 1,
            version=__version__, revision=revision(), python_version=platform.python_version(),
        )  # fmt: skip
        out.add("mailstore_spe_config_last_reload_successful", self._reload_ok)
        if self._reload_success_at is not None:
            out.add(
                "mailstore_spe_config_last_reload_success_timestamp_seconds",
                self._reload_success_at,
            )
        for target in self._targets:
            up = self._up.get(target)
            # Before the first poll finished, SPE is not known to be up.
            out.add("mailstore_spe_up", up is not None and up[1], target=target)
        for (target, collector), s in sorted(self._collectors.items()):
            if not s.enabled:
                continue
            labels = {"target": target, "collector": collector}
            out.add("mailstore_spe_collector_interval_seconds", s.interval, **labels)
            out.add("mailstore_spe_collector_runs_skipped", s.skipped, **labels)
            if s.success is not None:
                out.add("mailstore_spe_collector_success", s.success, **labels)
            if s.duration is not None:
                out.add("mailstore_spe_collector_duration_seconds", s.duration, **labels)
            if s.last_success is not None:
                out.add(
                    "mailstore_spe_collector_last_success_timestamp_seconds",
                    s.last_success,
                    **labels,
                )
        blocks: Blocks = render_blocks(out.samples)
        # Per-instance outcomes: rendered once per run, kept joined (see record_run).
        if self._outcome_block:
            blocks[OUTCOME_FAMILY] = self._outcome_block
        return blocks


OUTCOME_FAMILY = "mailstore_spe_instance_collect_success"


def _group_key(target: str, collector: str) -> str:
    # Sorts like (target, collector); NUL cannot occur in either name.
    return f"{target}\0{collector}"


def _group_target(key: str) -> str:
    return key.split("\0", 1)[0]
