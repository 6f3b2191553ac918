"""The latest data of every (target, collector), swapped in atomically.

A collector run produces samples; the store renders them at once (see exposition.py) and
keeps only the rendered bytes: one block per family with every instance's lines, and
where each instance's lines are in it. Keeping one copy of bytes rather than sample
objects bounds memory at thousands of instances; the exposition serves these very blocks.

Freshness rules:
- a run that failed as a whole leaves the previous data in place (the exporter never
  loses what it already knew) until it is older than the collector's maximum age;
- a run that failed for some instances only keeps those instances' previous data, again
  until it is too old, and replaces everything else;
- ``expire`` drops whatever is older than the maximum age, so nothing is served forever.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from exporter.collectors.base import Sample
from exporter.exposition import Blocks, render_blocks

# Samples without an instance_id label (e.g. per-target series) form this group.
_TARGET_GROUP = ""


class BlockSource(Protocol):
    """Anything else that contributes series: telemetry, collector health."""

    def version(self) -> int: ...

    def blocks(self) -> Blocks: ...


class _Entry:
    """The data of one (target, collector): one byte block per family holding every
    group (instance) in key order, plus where each group's lines are in it.

    Only one copy of the rendered lines is kept; a group's own bytes are cut out of the
    merged blocks when they are needed again (a failed instance keeping its previous
    data, expiry), which is rare.
    """

    __slots__ = ("at", "ends", "keys", "merged")

    def __init__(self, groups: dict[str, tuple[float, Blocks]]) -> None:
        self.keys = sorted(groups)
        self.at = array("d", (groups[key][0] for key in self.keys))
        chunks: dict[str, list[bytes]] = {}
        ends: dict[str, array] = {}
        sizes: dict[str, int] = {}
        for index, key in enumerate(self.keys):
            for family, chunk in groups[key][1].items():
                if family not in ends:
                    # A family first seen at this group: the groups before it had none.
                    ends[family] = array("Q", bytes(8 * index))
                    chunks[family] = []
                    sizes[family] = 0
                chunks[family].append(chunk)
                sizes[family] += len(chunk)
            for family, column in ends.items():
                column.append(sizes[family])
        self.ends = ends
        self.merged: Blocks = {family: b"".join(parts) for family, parts in chunks.items()}

    def group(self, index: int) -> tuple[float, Blocks]:
        """(collected_at, blocks) of the group at ``index`` (a copy of its lines)."""
        blocks = {}
        for family, column in self.ends.items():
            start = column[index - 1] if index else 0
            end = column[index]
            if end > start:
                blocks[family] = self.merged[family][start:end]
        return self.at[index], blocks

    def index(self) -> dict[str, int]:
        return {key: i for i, key in enumerate(self.keys)}


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
        self._listeners: list[Callable[[], None]] = []

    def add_listener(self, listener: Callable[[], None]) -> None:
        """``listener()`` runs after every change of the collectors' data, in the thread
        that made it (a poll), outside the lock: e.g. to prepare the exposition."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

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
        rendered: dict[str, Blocks] | None = None,
    ) -> None:
        """Replace the data of (target, collector) with a new run's samples.

        ``rendered`` holds groups the collector already rendered (instance_id -> blocks).
        ``failed_instances`` keep their previous data if it is younger than ``max_age``.
        Rendering happens before the lock is taken, so scrapes never wait for it.
        """
        fresh = {}
        for key, group in _group_samples(samples).items():
            fresh[key] = (collected_at, render_blocks(group))
        for key, blocks in (rendered or {}).items():
            fresh[key] = (collected_at, blocks)
        failed = [iid for iid in failed_instances if iid not in fresh]
        while True:
            with self._lock:
                old = self._entries.get((target, collector))
            groups = dict(fresh)
            if old is not None and failed:
                where = old.index()
                for instance_id in failed:
                    index = where.get(instance_id)
                    if index is None:
                        continue
                    previous = old.group(index)
                    if max_age is None or collected_at - previous[0] <= max_age:
                        groups[instance_id] = previous
            # Merging (a copy of this collector's lines) also happens outside the lock.
            entry = _Entry(groups)
            del groups
            with self._lock:
                if self._entries.get((target, collector)) is not old:
                    continue  # changed meanwhile (expiry): merge again from the new data
                self._entries[(target, collector)] = entry
                self._generation += 1
            break
        self._changed()

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
        if keys:
            self._changed()

    def expire(self, now: float, max_age: Callable[[str, str], float]) -> list[tuple[str, str]]:
        """Drop data older than its maximum age; returns the (target, collector) touched."""
        touched = []
        with self._lock:
            for key, entry in list(self._entries.items()):
                limit = max_age(*key)
                if not entry.at or now - min(entry.at) <= limit:
                    continue
                keep = {
                    group: entry.group(i)
                    for i, group in enumerate(entry.keys)
                    if now - entry.at[i] <= limit
                }
                touched.append(key)
                if keep:
                    self._entries[key] = _Entry(keep)
                else:
                    del self._entries[key]
            if touched:
                self._generation += 1
        if touched:
            self._changed()
        return touched

    def collected_at(self, target: str, collector: str) -> float | None:
        with self._lock:
            entry = self._entries.get((target, collector))
            if entry is None or not entry.keys:
                return None
            return max(entry.at)

    def collect(self) -> tuple[object, Sequence[Blocks]]:
        """The version and the blocks of everything, for the exposition cache."""
        with self._lock:
            sources = list(self._sources)
            version = (self._generation, *(s.version() for s in sources))
            blocks = [entry.merged for _, entry in sorted(self._entries.items())]
        blocks.extend(s.blocks() for s in sources)
        return version, blocks
