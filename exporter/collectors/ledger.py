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
* **Overlap.** Whether SPE filters on start or completion time is not known. A run
  that started before a window and completed inside it must still be seen, so the
  overlap (default 1 h) is generous; rows are small and deduplicated by id.
* **Catch-up.** After failures the next window starts at the last successful end, but
  never more than ``max_catch_up`` (default 7 days) back, so an instance that was
  unreachable for months does not cause hundreds of calls. Runs beyond that are lost.
* **Bounded memory.** A seen id is forgotten once its completion time is older than
  any future window can reach (window start minus another overlap as margin).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from exporter.collectors.parsing import to_spe_datetime

if TYPE_CHECKING:
    from exporter.spe.client import SPEClient

Row = TypeVar("Row")

HOUR = 3600.0
DAY = 24 * HOUR


@dataclass(frozen=True)
class WindowPolicy:
    initial_lookback: float  # seconds read on an instance's first poll
    overlap: float = HOUR
    max_window: float = DAY  # SPE fails ("Nullable object must have a value.") on wide ones
    max_catch_up: float = 7 * DAY
    count_lookback: float = 0.0

    def __post_init__(self) -> None:
        if self.max_window <= 0:
            raise ValueError("max_window must be positive")
        if min(self.initial_lookback, self.overlap, self.max_catch_up, self.count_lookback) < 0:
            raise ValueError("window durations must not be negative")


@dataclass
class ResultLedger:
    """Window bookkeeping and seen result ids of one instance."""

    policy: WindowPolicy
    window_end: float | None = None  # end of the last fully processed window
    count_from: float | None = None
    seen: dict[str, float] = field(default_factory=dict)  # result id -> completion time

    def windows(self, now: float) -> list[tuple[datetime, datetime]]:
        """``(fromIncluding, toExcluding)`` pairs, naive UTC, covering the next poll."""
        now = float(int(now))  # SPE takes whole seconds
        if self.count_from is None:
            self.count_from = now - self.policy.count_lookback
        if self.window_end is None:
            start = now - self.policy.initial_lookback
        else:
            start = max(self.window_end - self.policy.overlap, now - self.policy.max_catch_up)
        chunks = []
        while start < now:
            end = min(start + self.policy.max_window, now)
            chunks.append((to_spe_datetime(start), to_spe_datetime(end)))
            start = end
        return chunks

    def is_new(self, result_id: str) -> bool:
        return result_id not in self.seen

    def mark(self, result_id: str, completed: float) -> None:
        self.seen[result_id] = completed

    def counts(self, completed: float) -> bool:
        """Whether a run completing at ``completed`` is counted (see module docstring)."""
        return self.count_from is not None and completed >= self.count_from

    def commit(self, now: float) -> None:
        """All windows up to ``now`` were processed: advance and forget unreachable ids."""
        self.window_end = float(int(now))
        horizon = self.window_end - 2 * self.policy.overlap
        # In place, not a new dict per poll: objects made during a poll that outlive it
        # pin the allocator's memory (see docs/design.md, "Memory").
        for rid in [rid for rid, done in self.seen.items() if done < horizon]:
            del self.seen[rid]


def fetch_windows(
    client: SPEClient,
    function: str,
    ledger: ResultLedger,
    now: float,
    parse: Callable[[Any], list[Row]],
    *,
    instance_id: str,
    time_zone_arg: str,
) -> list[Row]:
    """Every row ``function`` returns for the instance in the ledger's next windows, parsed.

    One call per window, in UTC: ``time_zone_arg`` is the name the function gives its
    time-zone argument (GetJobResults ``timeZoneId``, GetWorkerResults ``timeZoneID``).
    The ledger's windows are not advanced: the caller commits once every window was
    fetched and parsed, so a failure retries them all.
    """
    rows: list[Row] = []
    for start, end in ledger.windows(now):
        result = client.call(
            function,
            instanceID=instance_id,
            fromIncluding=start,
            toExcluding=end,
            **{time_zone_arg: "UTC"},
        )
        rows.extend(parse(result))
    return rows
