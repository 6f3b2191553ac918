"""Building samples against the metric definitions.

``SampleBuilder`` puts labels in the order of ``metricdefs`` (``target`` first), checks
that a sample carries exactly the family's label names, emits state sets the way the
contract wants them, and drops exact duplicate series (a duplicate makes Prometheus
reject the whole scrape, so one odd SPE row must not cause one).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from exporter.collectors.base import Sample
from exporter.metricdefs import FAMILIES

log = logging.getLogger(__name__)

LabelValue = str | int | None


class LabelMismatchError(ValueError):
    """A collector built a sample whose label names differ from its family's (a bug)."""


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


def build_labels(family: str, values: dict[str, LabelValue]) -> tuple[tuple[str, str], ...]:
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


class SampleBuilder:
    """Collects the samples of one collector run for one target."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.samples: list[Sample] = []
        self._seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()

    def add(self, family: str, value: float | bool, **labels: LabelValue) -> None:
        """Add the sample of a gauge or counter family (``_total`` is appended)."""
        name = _SAMPLE_NAMES.get(family) or FAMILIES[family].sample_name()
        pairs = build_labels(family, {"target": self.target, **labels})
        key = (name, pairs)
        if key in self._seen:
            log.debug("dropping duplicate series %s%s", name, pairs)
            return
        self._seen.add(key)
        self.samples.append(Sample(name, pairs, float(value)))

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
