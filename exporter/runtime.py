"""The exporter's own process and Python runtime series (``process_*``, ``python_*``).

prometheus_client's collectors gather them (ProcessCollector reads /proc/self on Linux and
yields nothing elsewhere; PlatformCollector and GCCollector work everywhere) on a private
registry, so nothing global is touched. Their samples are rendered like every other source,
against the families declared in ``exporter.metricdefs`` (``RUNTIME_DEFS``).

Scrape cost: these values change all the time, so they are the exposition cache's *tail*
(``ExpositionCache(..., tail=runtime.tail)``): when only they moved, a scrape re-renders
the end of the cached body (about 0.1 ms, gzip included), never the whole body. They are
collected again at most every ``REFRESH_SECONDS`` (collecting costs about 0.07 ms).
Their families are the last in ``metricdefs.FAMILIES``, as a tail's must be.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from exporter.exposition import Blocks, render_blocks
from exporter.metricdefs import RUNTIME_DEFS
from exporter.samples import Sample, SampleBuilder

REFRESH_SECONDS = 1.0


def runtime_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class RuntimeMetrics:
    """A block source (see ``snapshot.BlockSource``) of the process and runtime series."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self._registry = registry or runtime_registry()
        self._clock = clock
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._rendered_version: int | None = None
        self._rendered: Blocks = {}

    def tail(self) -> tuple[int, Blocks]:
        """(version, blocks) for ``ExpositionCache``'s tail."""
        version = self.version()
        return version, self._blocks_of(version)

    def version(self) -> int:
        return int(self._clock() // self._refresh)

    def blocks(self) -> Blocks:
        return self._blocks_of(self.version())

    def _blocks_of(self, version: int) -> Blocks:
        with self._lock:
            if version != self._rendered_version:
                self._rendered = render_blocks(self._samples())
                self._rendered_version = version
            return self._rendered

    def _samples(self) -> list[Sample]:
        out = SampleBuilder(None)
        for metric in self._registry.collect():
            family = RUNTIME_DEFS.get(metric.name)
            if family is None:
                continue  # a series a newer prometheus_client added: not in our contract
            for sample in metric.samples:
                if sample.name != family.sample_name():
                    continue  # e.g. a counter's _created
                labels = {name: sample.labels[name] for name in family.labels}
                out.add(family.name, float(sample.value), **labels)
        return out.samples
