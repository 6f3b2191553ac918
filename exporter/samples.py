"""Samples, and building them against the metric definitions.

The bottom floor with ``exporter.metricdefs``: collectors, the collector health table and
the telemetry all build their series here, so every series gets the same checks.

``SampleBuilder`` puts labels in the order of ``metricdefs`` (``target`` first), checks
that a sample carries exactly the family's label names, names counter samples
(``_total``) and histogram samples (``_bucket``/``_sum``/``_count``) itself, emits state
sets the way the contract wants them, and drops exact duplicate series (a duplicate makes
Prometheus reject the whole scrape, so one odd SPE row must not cause one).

A collector hands its samples to a ``SampleSink`` (``CollectContext.sink``) and never
sees how they are kept: the scheduler's sink renders them at once
(``exporter.snapshot.RunSink``); ``SampleList`` just keeps them (tests, benchmarks).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from exporter.metricdefs import FAMILIES

log = logging.getLogger(__name__)

LabelValue = str | int | None
Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Sample:
    name: str  # full sample name, e.g. "mailstore_spe_profile_runs_total"
    labels: Labels  # ordered as in metricdefs, "target" first
    value: float


class LabelMismatchError(ValueError):
    """Code built a sample whose label names differ from its family's (a bug)."""


def label_value(value: LabelValue) -> str:
    # SPE ids are numbers and optional fields are null; label values are strings.
    if value is None:
        return ""
    return str(value)


# Per family: label names in order and as a set, and the sample name (gauge/counter).
# Computed once: every sample of every poll goes through build_labels.
_LABEL_NAMES = {name: fam.labels for name, fam in FAMILIES.items()}
_LABEL_SETS = {name: frozenset(fam.labels) for name, fam in FAMILIES.items()}
_SAMPLE_NAMES = {
    name: fam.sample_name() for name, fam in FAMILIES.items() if fam.type != "histogram"
}


def build_labels(family: str, values: dict[str, LabelValue]) -> Labels:
    """Label pairs in the family's order; raises ``LabelMismatchError`` on other names."""
    if values.keys() != _LABEL_SETS[family]:
        raise LabelMismatchError(
            f"{family}: labels {sorted(values)} do not match metricdefs "
            f"{list(_LABEL_NAMES[family])}"
        )
    return tuple(
        [
            (name, value if (value := values[name]).__class__ is str else label_value(value))
            for name in _LABEL_NAMES[family]
        ]
    )


_BOUND_TEXT: dict[float, str] = {}  # ``le`` label values: few bounds, rendered often


def _bound(bound: float) -> str:
    text = _BOUND_TEXT.get(bound)
    if text is None:
        text = _BOUND_TEXT[bound] = repr(float(bound))
    return text


class SampleBuilder:
    """Collects samples in order. With a ``target``, every sample gets that ``target``
    label (a collector run, the telemetry of one target); with ``None`` the caller passes
    all labels (the health table's series of several targets, or of none)."""

    def __init__(self, target: str | None) -> None:
        self.target = target
        self.samples: list[Sample] = []
        self._seen: set[tuple[str, Labels]] = set()

    def _labels(self, family: str, labels: dict[str, LabelValue]) -> Labels:
        # ``labels`` is the caller's fresh ``**labels`` dict: adding to it copies nothing.
        if self.target is not None:
            labels["target"] = self.target
        return build_labels(family, labels)

    def _append(self, name: str, pairs: Labels, value: float) -> None:
        key = (name, pairs)
        if key in self._seen:
            log.debug("dropping duplicate series %s%s", name, pairs)
            return
        self._seen.add(key)
        self.samples.append(Sample(name, pairs, float(value)))

    def add(self, family: str, value: float | bool, **labels: LabelValue) -> None:
        """Add the sample of a gauge or counter family (``_total`` is appended)."""
        name = _SAMPLE_NAMES.get(family) or FAMILIES[family].sample_name()
        self._append(name, self._labels(family, labels), value)

    def histogram(
        self,
        family: str,
        bounds: Sequence[float],
        counts: Sequence[int],
        total: float,
        count: int,
        **labels: LabelValue,
    ) -> None:
        """A histogram's samples: ``counts`` per bucket (not cumulative), then +Inf."""
        if FAMILIES[family].type != "histogram":
            raise LabelMismatchError(f"{family} is not a histogram")
        pairs = self._labels(family, labels)
        key = (f"{family}_count", pairs)
        if key in self._seen:
            log.debug("dropping duplicate histogram %s%s", family, pairs)
            return
        # One check for the whole histogram: its samples differ from each other by name
        # or ``le``, so checking each one (the telemetry renders often) is wasted work.
        self._seen.add(key)
        bucket = f"{family}_bucket"
        append = self.samples.append
        cumulative = 0
        for bound, n in zip(bounds, counts, strict=True):
            cumulative += n
            append(Sample(bucket, (*pairs, ("le", _bound(bound))), cumulative))
        append(Sample(bucket, (*pairs, ("le", "+Inf")), count))
        append(Sample(f"{family}_sum", pairs, total))
        append(Sample(f"{family}_count", pairs, count))

    def state_set(
        self,
        family: str,
        state_label: str,
        known: Iterable[str],
        current: str | None,
        **labels: LabelValue,
    ) -> None:
        """Every known state as 0/1; an unknown ``current`` as its own state with 1.

        ``current=None`` (no state known) emits every known state as 0.
        """
        known = tuple(known)
        for state in known:
            self.add(family, state == current, **labels, **{state_label: state})
        if current is not None and current not in known:
            self.add(family, 1, **labels, **{state_label: current})

    def extend(self, samples: Iterable[Sample]) -> None:
        for sample in samples:
            key = (sample.name, sample.labels)
            if key not in self._seen:
                self._seen.add(key)
                self.samples.append(sample)


class SampleSink(Protocol):
    """Where a collector run puts its samples.

    ``instance_id`` names the group of a per-instance collector: all of that instance's
    samples of the run, put once from the worker that fetched them. Without it, the
    samples are of the whole target (grouped by their ``instance_id`` label, if any).
    Called from several threads at once.
    """

    def put(self, samples: Sequence[Sample], instance_id: str | None = None) -> None: ...


class SampleList:
    """A sink that keeps the samples: the whole target's first, then each instance's in
    the order of instance ids (as the rendered output orders its groups)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[str, list[Sample]] = {}

    def put(self, samples: Sequence[Sample], instance_id: str | None = None) -> None:
        with self._lock:
            self._groups.setdefault(instance_id or "", []).extend(samples)

    @property
    def samples(self) -> list[Sample]:
        with self._lock:
            return [s for key in sorted(self._groups) for s in self._groups[key]]
