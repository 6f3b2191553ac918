"""The latest data of every (target, collector), swapped in atomically.

A collector run produces samples; the store renders them at once (see exposition.py) and
keeps only the rendered bytes, grouped by SPE instance. Keeping bytes rather than
sample objects bounds memory at thousands of instances.

Freshness rules:
- a run that failed as a whole leaves the previous data in place (the exporter never
  loses what it already knew) until it is older than the collector's maximum age;
- a run that failed for some instances only keeps those instances' previous data, again
  until it is too old, and replaces everything else;
- ``expire`` drops whatever is older than the maximum age, so nothing is served forever.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from exporter.collectors.base import Sample
from exporter.exposition import Blocks, render_blocks

# Samples without an instance_id label (e.g. per-target series) form this group.
_TARGET_GROUP = ""


class BlockSource(Protocol):
    """Anything else that contributes series: telemetry, collector health."""

    def version(self) -> int: ...

    def blocks(self) -> Blocks: ...


@dataclass
class _Entry:
    # group key (instance_id or "") -> (collected_at, rendered blocks)
    groups: dict[str, tuple[float, Blocks]] = field(default_factory=dict)
    merged: Blocks = field(default_factory=dict)

    def remerge(self) -> None:
        merged: dict[str, list[bytes]] = {}
        for key in sorted(self.groups):
            for family, chunk in self.groups[key][1].items():
                merged.setdefault(family, []).append(chunk)
        self.merged = {family: b"".join(chunks) for family, chunks in merged.items()}


def _group_samples(samples: Iterable[Sample]) -> dict[str, list[Sample]]:
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        key = _TARGET_GROUP
        for name, value in sample.labels:
            if name == "instance_id":
                key = value
                break
        groups.setdefault(key, []).append(sample)
    return groups


class SnapshotStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._generation = 0
        self._sources: list[BlockSource] = []

    def add_source(self, source: BlockSource) -> None:
        with self._lock:
            if source not in self._sources:
                self._sources.append(source)
                self._generation += 1

    def remove_source(self, source: BlockSource) -> None:
        with self._lock:
            if source in self._sources:
                self._sources.remove(source)
                self._generation += 1

    def swap(
        self,
        target: str,
        collector: str,
        samples: Iterable[Sample],
        collected_at: float,
        *,
        failed_instances: Iterable[str] = (),
        max_age: float | None = None,
    ) -> None:
        """Replace the data of (target, collector) with a new run's samples.

        ``failed_instances`` keep their previous data if it is younger than ``max_age``.
        Rendering happens before the lock is taken, so scrapes never wait for it.
        """
        fresh = {
            key: (collected_at, render_blocks(group))
            for key, group in _group_samples(samples).items()
        }
        with self._lock:
            old = self._entries.get((target, collector))
            if old is not None:
                for instance_id in failed_instances:
                    previous = old.groups.get(instance_id)
                    if previous is None or instance_id in fresh:
                        continue
                    if max_age is None or collected_at - previous[0] <= max_age:
                        fresh[instance_id] = previous
            entry = _Entry(groups=fresh)
            entry.remerge()
            self._entries[(target, collector)] = entry
            self._generation += 1

    def drop(self, target: str, collector: str | None = None) -> None:
        with self._lock:
            keys = [
                key
                for key in self._entries
                if key[0] == target and (collector is None or key[1] == collector)
            ]
            for key in keys:
                del self._entries[key]
            if keys:
                self._generation += 1

    def expire(self, now: float, max_age: Callable[[str, str], float]) -> list[tuple[str, str]]:
        """Drop data older than its maximum age; returns the (target, collector) touched."""
        touched = []
        with self._lock:
            for key, entry in list(self._entries.items()):
                limit = max_age(*key)
                stale = [g for g, (at, _) in entry.groups.items() if now - at > limit]
                if not stale:
                    continue
                for group in stale:
                    del entry.groups[group]
                touched.append(key)
                if entry.groups:
                    entry.remerge()
                else:
                    del self._entries[key]
            if touched:
                self._generation += 1
        return touched

    def collected_at(self, target: str, collector: str) -> float | None:
        with self._lock:
            entry = self._entries.get((target, collector))
            if entry is None or not entry.groups:
                return None
            return max(at for at, _ in entry.groups.values())

    def collect(self) -> tuple[object, Sequence[Blocks]]:
        """The version and the blocks of everything, for the exposition cache."""
        with self._lock:
            sources = list(self._sources)
            version = (self._generation, *(s.version() for s in sources))
            blocks = [entry.merged for _, entry in sorted(self._entries.items())]
        blocks.extend(s.blocks() for s in sources)
        return version, blocks
