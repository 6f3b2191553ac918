"""The latest data of every (target, collector), swapped in atomically.

A collector run puts its samples into a ``RunSink``, which renders each put at once
(``exporter.exposition.render_blocks``, in the worker that fetched the instance) into a
``GroupWriter``; the store keeps only the rendered bytes: one block per family with every
instance's lines (large ones deflated), and where each instance's lines are in it. Keeping
one copy of bytes rather than sample objects bounds memory at thousands of instances; the
exposition serves these very blocks.

Freshness rules:
- a run that failed as a whole leaves the previous data in place (the exporter never
  loses what it already knew) until it is older than the collector's maximum age;
- a run that failed for some instances only keeps those instances' previous data, again
  until it is too old, and replaces everything else;
- ``expire`` drops whatever is older than the maximum age, so nothing is served forever.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from exporter.exposition import Blocks, render_blocks
from exporter.groups import GroupBlocks, GroupWriter, merge_groups
from exporter.samples import Sample, SampleBuilder

# Samples without an instance_id label (e.g. per-target series) form this group.
_TARGET_GROUP = ""


class BlockSource(Protocol):
    """Anything else that contributes series: telemetry, collector health."""

    def version(self) -> int: ...

    def blocks(self) -> Blocks: ...


def _group_samples(samples: Iterable[Sample]) -> dict[str, list[Sample]]:
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        key = _TARGET_GROUP
        for name, value in sample.labels:
            if name == "instance_id":
                # Interned: the key outlives the run, and the same string object every run
                # (not one parsed this run) keeps poll garbage from pinning memory.
                key = sys.intern(value)
                break
        groups.setdefault(key, []).append(sample)
    return groups


class CachedBlockSource:
    """Base of the exporter's own block sources (telemetry, collector health): a
    ``BlockSource`` that renders only when its state changed.

    Subclasses change their state under ``self._lock`` and bump ``self._version``;
    ``blocks()`` renders again only when the version moved since the last render, so a
    scrape of an unchanged source costs nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = 0
        self._rendered_version = -1
        self._rendered: Blocks = {}

    def _render_blocks(self) -> Blocks:
        """Render the current state; called with ``self._lock`` held."""
        raise NotImplementedError

    def version(self) -> int:
        # No lock: reading an int attribute is atomic, and scrapes ask for the version of
        # every source while the polling threads change them (issue 16).
        return self._version

    def blocks(self) -> Blocks:
        with self._lock:
            if self._rendered_version != self._version:
                self._rendered = self._render_blocks()
                self._rendered_version = self._version
            return self._rendered


class RunSink:
    """The sink of one collector run (``exporter.samples.SampleSink``): renders what the
    collector puts at once, one group per instance, so a run never holds the samples of
    all its instances."""

    def __init__(self) -> None:
        self.writer = GroupWriter(spool=True)

    def put(self, samples: Sequence[Sample], instance_id: str | None = None) -> None:
        if instance_id is not None:
            unique = SampleBuilder(None)  # one instance's series, each once
            unique.extend(samples)
            self.writer.add(instance_id, render_blocks(unique.samples))
            return
        for key, group in _group_samples(samples).items():
            self.writer.add(key, render_blocks(group))


class SnapshotStore:
    """``pack``: keep the collectors' large blocks deflated (``exporter.gzipstitch.
    DeflatedBlock``): at thousands of instances the text is most of the exporter's memory,
    and Prometheus scrapes gzip (docs/design.md, "Memory")."""

    def __init__(self, *, pack: bool = True) -> None:
        self.pack = pack
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], GroupBlocks] = {}
        self._generation = 0
        self._sources: list[BlockSource] = []
        self._source_list: tuple[BlockSource, ...] = ()  # replaced whole: read without the lock
        self._data: tuple[int, list[Blocks]] = (-1, [])  # collect_data's last answer
        self._sources_data: tuple[object, list[Blocks]] = ((), [])  # collect_sources' last
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
                self._source_list = tuple(self._sources)
                self._generation += 1

    def remove_source(self, source: BlockSource) -> None:
        with self._lock:
            if source in self._sources:
                self._sources.remove(source)
                self._source_list = tuple(self._sources)
                self._generation += 1

    def swap(
        self,
        target: str,
        collector: str,
        run: RunSink,
        collected_at: float,
        *,
        failed_instances: Iterable[str] = (),
        max_age: float | None = None,
    ) -> None:
        """Replace the data of (target, collector) with what a new run put into ``run``.

        ``failed_instances`` keep their previous data if it is younger than ``max_age``.
        Merging happens before the lock is taken, so scrapes never wait.
        """
        fresh = run.writer.finish(collected_at, pack=self.pack)
        failed = set(failed_instances) - set(fresh.keys)
        while True:
            with self._lock:
                old = self._entries.get((target, collector))
            entry = fresh
            if old is not None and failed:
                keep = old.select(
                    lambda key, at: (
                        key in failed and (max_age is None or collected_at - at <= max_age)
                    )
                )
                if keep:
                    entry = fresh.plus(keep)  # rare: copies this collector's lines once more
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
                keep = entry.select(lambda _key, at, limit=limit: now - at <= limit)
                touched.append(key)
                if keep:
                    self._entries[key] = merge_groups(keep, pack=entry.packed)
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

    def collect_data(self) -> tuple[object, Sequence[Blocks]]:
        """The collectors' data alone: version and blocks (``collect`` without sources).

        Called by every scrape: the answer is kept until the generation moves, so a
        scrape of unchanged data reads two attributes (the pair is replaced whole; an
        answer one generation old is what a scrape a moment earlier would have had)."""
        data = self._data
        if data[0] == self._generation:
            return data
        with self._lock:
            data = self._data = (
                self._generation,
                [entry.merged for _, entry in sorted(self._entries.items())],
            )
        return data

    def sources_version(self) -> object:
        """The version ``collect_sources`` would give, without rendering anything."""
        return self._version_of(self._source_list)

    def _version_of(self, sources: Sequence[BlockSource]) -> object:
        return (self._generation, *[s.version() for s in sources])

    def collect_sources(self) -> tuple[object, Sequence[Blocks]]:
        """The added sources alone (health, telemetry: they change during every poll);
        like ``collect_data``, kept until a source's version moves."""
        sources = self._source_list
        version = self._version_of(sources)
        cached = self._sources_data
        if cached[0] == version:
            return cached
        cached = self._sources_data = (version, [s.blocks() for s in sources])
        return cached
