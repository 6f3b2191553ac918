"""Counting run results (GetWorkerResults, GetJobResults) exactly once.

SPE has no "results since id N" query, only time windows, and it fails on wide
windows. So each poll asks for ``[last window end - overlap, now)`` in chunks no wider
than ``max_window``, and a ``ResultLedger`` remembers which result ids it has seen.

Decisions (documented for operators in the collector modules):

* **What is counted.** Only runs that completed at or after ``count_from``: the
  instance's first poll minus ``count_lookback`` (default 0). Runs from before the
  exporter started are not counted: after an exporter restart the counters start again
  from zero, and counting old runs again would make ``increase()`` count them twice.
  They are still read (``initial_lookback``) so last-run gauges are known at once.
* **Overlap.** Whether SPE filters on start or completion time is not known. If it
  filters on start time, a run is listed only by windows that hold its start, and only
  once it has finished: the next poll after it completes must reach back to its start.
  So the overlap is at least ``overlap`` (1 h) and grows to the longest run this ledger
  has seen plus a 10-minute margin, capped at ``max_overlap`` (config
  ``result_windows.max_overlap``, default 1 day). A run longer than every run seen
  before it (the very first multi-hour Microsoft 365 run) can still be missed when SPE
  filters on start time; the first poll's ``initial_lookback`` reads a day back, so runs
  of the previous day teach the ledger their length at once. The cost of a larger
  overlap is more rows per poll and more remembered ids (``benchmarks/overlap.py``).
* **Splitting.** SPE fails with "Nullable object must have a value." when a window
  holds too many rows (about 5,000 on 25.3.1, whatever its width). Such a window is
  split in halves, and halves again, down to ``min_window`` (5 minutes); a window of
  that width that still fails fails the poll with a message saying so (the next poll
  retries; nothing is counted until every window of a poll succeeded). The narrowest
  width that worked is kept for the instance's next polls and doubles back towards
  ``max_window`` after each poll that needed no split.
* **Catch-up.** After failures the next window starts at the last successful end, but
  never more than ``max_catch_up`` (default 7 days) back, so an instance that was
  unreachable for months does not cause hundreds of calls. Runs beyond that are lost.
* **Bounded memory.** A seen id is forgotten once its completion time is older than
  the next window's start minus the base overlap. Should a later, longer overlap reach
  back past that point, runs completed before it are read but not counted again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

from exporter.collectors.parsing import to_spe_datetime
from exporter.spe.errors import SPEAPIError

HOUR = 3600.0
DAY = 24 * HOUR
MINUTE = 60.0
# Added to the longest run seen: clock differences between SPE and the exporter, and a
# run a little longer than the longest so far.
OVERLAP_MARGIN = 10 * MINUTE
# SPE's answer when a window holds too many rows (captures: about 5,000).
TOO_MANY_ROWS = "Nullable object must have a value."

T = TypeVar("T")


@dataclass(frozen=True)
class WindowPolicy:
    initial_lookback: float  # seconds read on an instance's first poll
    overlap: float = HOUR  # the least overlap; it grows with the longest run seen
    max_overlap: float = DAY  # the most overlap (config result_windows.max_overlap)
    max_window: float = DAY  # SPE fails ("Nullable object must have a value.") on wide ones
    min_window: float = 5 * MINUTE  # windows are split no narrower than this
    max_catch_up: float = 7 * DAY
    count_lookback: float = 0.0

    def __post_init__(self) -> None:
        if self.max_window <= 0 or self.min_window <= 0:
            raise ValueError("max_window and min_window must be positive")
        if min(self.initial_lookback, self.overlap, self.max_catch_up, self.count_lookback) < 0:
            raise ValueError("window durations must not be negative")
        if self.max_overlap < self.overlap:
            raise ValueError("max_overlap must not be smaller than overlap")


@dataclass
class ResultLedger:
    """Window bookkeeping and seen result ids of one instance."""

    policy: WindowPolicy
    window_end: float | None = None  # end of the last fully processed window
    count_from: float | None = None
    seen: dict[str, float] = field(default_factory=dict)  # result id -> completion time
    longest_run: float = 0.0  # seconds, of any finished run seen
    forgotten_before: float = float("-inf")  # ids of runs completed before this are gone
    width: float | None = None  # current chunk width (None: max_window)

    @property
    def overlap(self) -> float:
        """How far each poll reaches back before the last window's end."""
        policy = self.policy
        return max(policy.overlap, min(policy.max_overlap, self.longest_run + OVERLAP_MARGIN))

    def spans(self, now: float) -> list[tuple[float, float]]:
        """``(start, end)`` unix seconds of the windows covering the next poll."""
        now = float(int(now))  # SPE takes whole seconds
        if self.count_from is None:
            self.count_from = now - self.policy.count_lookback
        if self.window_end is None:
            start = now - self.policy.initial_lookback
        else:
            start = max(self.window_end - self.overlap, now - self.policy.max_catch_up)
        width = self.width or self.policy.max_window
        chunks = []
        while start < now:
            end = min(start + width, now)
            chunks.append((start, end))
            start = end
        return chunks

    def windows(self, now: float) -> list[tuple[datetime, datetime]]:
        """``(fromIncluding, toExcluding)`` pairs, naive UTC, covering the next poll."""
        return [(to_spe_datetime(a), to_spe_datetime(b)) for a, b in self.spans(now)]

    def observe_run(self, started: float | None, completed: float | None) -> None:
        """A finished run was read: the overlap must cover runs this long."""
        if started is not None and completed is not None:
            self.longest_run = max(self.longest_run, completed - started)

    def is_new(self, result_id: str) -> bool:
        return result_id not in self.seen

    def mark(self, result_id: str, completed: float) -> None:
        self.seen[result_id] = completed

    def counts(self, completed: float) -> bool:
        """Whether a run completing at ``completed`` is counted (see module docstring)."""
        if self.count_from is None:
            return False
        return completed >= self.count_from and completed >= self.forgotten_before

    def commit(self, now: float, narrowest: float | None = None) -> None:
        """All windows up to ``now`` were processed: advance and forget unreachable ids.

        ``narrowest``: the width of the narrowest split window of this poll, if any.
        """
        self.window_end = float(int(now))
        if narrowest is not None:
            self.width = narrowest
        elif self.width is not None:
            doubled = self.width * 2
            self.width = None if doubled >= self.policy.max_window else doubled
        horizon = self.window_end - self.overlap - self.policy.overlap
        self.forgotten_before = max(self.forgotten_before, horizon)
        # In place, not a new dict per poll: objects made during a poll that outlive it
        # pin the allocator's memory (see docs/design.md, "Memory").
        for rid in [rid for rid, done in self.seen.items() if done < horizon]:
            del self.seen[rid]


class ResultWindowCollector:
    """A collector that reads results through ledgers made from ``self.policy``."""

    policy: WindowPolicy

    def limit_overlap(self, max_overlap: float) -> None:
        """Set the overlap cap (config ``result_windows.max_overlap``) before the first run."""
        self.policy = replace(self.policy, max_overlap=max(max_overlap, self.policy.overlap))


class WindowTooNarrowError(SPEAPIError):
    """A window of the minimum width still holds too many rows for SPE."""


def fetch_windows(
    ledger: ResultLedger,
    now: float,
    fetch: Callable[[datetime, datetime], list[T]],
) -> tuple[list[T], float | None]:
    """Every row of the poll's windows, and the narrowest width a split needed (or None).

    ``fetch(fromIncluding, toExcluding)`` calls SPE and parses the rows. A window that
    fails with "Nullable object must have a value." is split in halves until it works or
    is ``min_window`` wide (see the module docstring). Nothing changes in the ledger:
    pass the width to ``commit`` once the rows have been applied.
    """
    rows: list[T] = []
    narrowest: float | None = None
    pending = ledger.spans(now)
    pending.reverse()  # a stack, oldest window on top
    while pending:
        start, end = pending.pop()
        try:
            rows.extend(fetch(to_spe_datetime(start), to_spe_datetime(end)))
        except SPEAPIError as exc:
            if TOO_MANY_ROWS not in exc.message:
                raise
            half = float(int((end - start) / 2))
            if half < ledger.policy.min_window:
                raise WindowTooNarrowError(
                    f"{exc.message} (SPE fails on windows with too many rows; the window "
                    f"{to_spe_datetime(start).isoformat()} to {to_spe_datetime(end).isoformat()}"
                    f" UTC cannot be split below {ledger.policy.min_window / MINUTE:g} minutes)",
                    function=exc.function,
                ) from exc
            pending.append((start + half, end))
            pending.append((start, start + half))
            narrowest = half if narrowest is None else min(narrowest, half)
    return rows, narrowest
