"""The exporter's own series about its calls to SPE, per target.

``Telemetry`` is the client's observer (``exporter.spe.observer.ClientObserver``): it counts API
calls, failures by reason, durations, and follows long-running calls (token +
get-status) from their first answer to their final status. It renders its series only
when something changed since the last scrape.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from exporter.exposition import Blocks, render_blocks
from exporter.metricdefs import DURATION_BUCKETS
from exporter.samples import SampleBuilder
from exporter.snapshot import CachedBlockSource
from exporter.spe.errors import REASONS, SPEAccessRefusedError, SPEError
from exporter.spe.observer import ClientObserver

log = logging.getLogger(__name__)

ASYNC_RESULTS = ("succeeded", "failed", "cancelled", "timeout")


@dataclass
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def add_to(self, out: SampleBuilder, family: str, **labels: str) -> None:
        out.histogram(family, self.buckets, self.counts, self.total, self.count, **labels)


@dataclass
class _AsyncState:
    in_progress: int = 0
    progress: dict[str, float] = field(default_factory=dict)  # token -> ratio
    results: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ASYNC_RESULTS, 0))
    histogram: Histogram = field(default_factory=lambda: Histogram(DURATION_BUCKETS))
    last_duration: float | None = None
    last_success: float | None = None
    last_error: str | None = None


class Telemetry(CachedBlockSource, ClientObserver):
    """Counters of one target. Thread-safe; implements the client's observer protocol."""

    def __init__(self, target: str, clock: Callable[[], float] = time.time) -> None:
        self.target = target
        self._clock = clock
        super().__init__()
        self._requests: dict[str, int] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._durations: dict[str, Histogram] = {}
        self._async: dict[str, _AsyncState] = {}
        self._maintenance_skipped: dict[str, int] = {}  # function -> skipped runs

    # -- observer protocol -------------------------------------------------------------
    def request_finished(self, function: str, duration: float, error: SPEError | None) -> None:
        with self._lock:
            self._requests[function] = self._requests.get(function, 0) + 1
            # A call refused because service provider access is off is the tenant's
            # choice, not a failure: it counts as a request only.
            if error is not None and not isinstance(error, SPEAccessRefusedError):
                key = (function, error.reason)
                self._failures[key] = self._failures.get(key, 0) + 1
            hist = self._durations.get(function)
            if hist is None:
                hist = self._durations[function] = Histogram(DURATION_BUCKETS)
            hist.observe(duration)
            self._version += 1

    def result_rejected(self, function: str) -> None:
        with self._lock:
            key = (function, "invalid_response")
            self._failures[key] = self._failures.get(key, 0) + 1
            self._version += 1

    def async_started(self, function: str, token: str) -> None:
        with self._lock:
            state = self._async.setdefault(function, _AsyncState())
            state.in_progress += 1
            # No progress until SPE reports some: its own example keeps percentProgress at 0
            # for a whole run, and a ratio stuck at 0 would read as "no progress made".
            self._version += 1

    def async_progress(
        self, function: str, token: str, percent: float | None, text: str | None
    ) -> None:
        if percent is None:
            return
        with self._lock:
            state = self._async.setdefault(function, _AsyncState())
            if percent <= 0 and token not in state.progress:
                return  # SPE has not reported any progress for this call (yet)
            state.progress[token] = max(0.0, min(1.0, float(percent) / 100.0))
            self._version += 1

    def async_finished(
        self,
        function: str,
        token: str,
        result: str,
        duration: float,
        error: str | None = None,
    ) -> None:
        with self._lock:
            state = self._async.setdefault(function, _AsyncState())
            state.in_progress = max(0, state.in_progress - 1)
            state.progress.pop(token, None)
            state.results[result] = state.results.get(result, 0) + 1
            state.histogram.observe(duration)
            state.last_duration = duration
            if result == "succeeded":
                state.last_success = self._clock()
                state.last_error = None
            elif error:
                state.last_error = error
            self._version += 1
        if result in ("failed", "timeout"):
            # One line per failed operation; the message is never a label (unbounded values).
            log.warning(
                "long-running SPE operation %s",
                "timed out" if result == "timeout" else "failed",
                extra={
                    "target": self.target,
                    "function": function,
                    "duration": round(duration, 3),
                    "error": error or "no error message",
                },
            )

    def functions_declared(self, functions: Iterable[str]) -> None:
        """Export the call and failure counters of these functions at 0 from the start, for
        every failure reason: an alert on increase() needs a series' earlier 0 to see its
        first failure (a series that appears with its first failure has no baseline)."""
        with self._lock:
            for function in functions:
                self._requests.setdefault(function, 0)
                for reason in REASONS:
                    self._failures.setdefault((function, reason), 0)
            self._version += 1

    # -- maintenance scheduler -----------------------------------------------------------
    def maintenance_declared(self, function: str) -> None:
        """Show the skip counter of a configured maintenance function from the start (0)."""
        with self._lock:
            self._maintenance_skipped.setdefault(function, 0)
            self._version += 1

    def maintenance_skipped(self, function: str) -> None:
        with self._lock:
            self._maintenance_skipped[function] = self._maintenance_skipped.get(function, 0) + 1
            self._version += 1

    # -- for the landing page ------------------------------------------------------------
    def async_errors(self) -> dict[str, str]:
        with self._lock:
            return {fn: s.last_error for fn, s in self._async.items() if s.last_error}

    def async_running(self) -> dict[str, int]:
        with self._lock:
            return {fn: s.in_progress for fn, s in self._async.items() if s.in_progress}


    def _render_blocks(self) -> Blocks:
        out = SampleBuilder(self.target)
        for fn, count in sorted(self._requests.items()):
            out.add("mailstore_spe_api_requests", count, function=fn)
        for (fn, reason), count in sorted(self._failures.items()):
            out.add("mailstore_spe_api_request_failures", count, function=fn, reason=reason)
        for fn, count in sorted(self._maintenance_skipped.items()):
            out.add("mailstore_spe_maintenance_runs_skipped", count, function=fn)
        for fn, hist in sorted(self._durations.items()):
            hist.add_to(out, "mailstore_spe_api_request_duration_seconds", function=fn)
        for fn, state in sorted(self._async.items()):
            out.add("mailstore_spe_async_operations_in_progress", state.in_progress, function=fn)
            for result, count in state.results.items():
                out.add("mailstore_spe_async_operations", count, function=fn, result=result)
            state.histogram.add_to(
                out, "mailstore_spe_async_operation_duration_seconds", function=fn
            )
            if state.last_duration is not None:
                out.add(
                    "mailstore_spe_async_operation_last_duration_seconds",
                    state.last_duration,
                    function=fn,
                )
            if state.last_success is not None:
                out.add(
                    "mailstore_spe_async_operation_last_success_timestamp_seconds",
                    state.last_success,
                    function=fn,
                )
            if state.progress:
                # Several concurrent runs of one function: show the least advanced.
                out.add(
                    "mailstore_spe_async_operation_progress_ratio",
                    min(state.progress.values()),
                    function=fn,
                )
        return render_blocks(out.samples)
