"""Fakes and helpers for the collector tests: a scripted SPE client and sample lookups."""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Callable, Iterable
from typing import Any

from exporter.collectors.base import CollectContext, Collector, CollectResult, InstanceRef
from exporter.samples import Sample, SampleList
from exporter.spe.observer import ClientObserver

TARGET = "spe1"
# 2026-05-02T12:00:00Z: a fixed "now" for window tests.
NOW = 1777723200.0


UTC_ZONES = [{"id": "UTC", "displayName": "(UTC) Coordinated Universal Time"}]


class FakeClient:
    """Answers ``call(function, **args)`` from canned results and records every call.

    A response is a value, an exception to raise, or a callable taking the call's
    arguments and returning either.
    """

    stopped = False  # SPEClient.stopped: never closed

    def __init__(self, responses: dict[str, Any]) -> None:
        # SPE lists "UTC" unless a test says otherwise (the time zone check, timezone.py).
        self.responses = {"GetTimeZones": UTC_ZONES, **responses}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.report = ClientObserver()  # events are not looked at here

    def call(self, function: str, **args: Any) -> Any:
        with self._lock:
            self.calls.append((function, args))
        response = self.responses[function]
        if callable(response) and not isinstance(response, Exception):
            response = response(**args)
        if isinstance(response, Exception):
            raise response
        return copy.deepcopy(response)

    def calls_of(self, function: str) -> list[dict[str, Any]]:
        return [args for name, args in self.calls if name == function]


def by_instance(results: dict[str, Any]) -> Callable[..., Any]:
    """A response that depends on the ``instanceID`` argument."""

    def respond(instanceID: str, **_: Any) -> Any:
        return results[instanceID]

    return respond


def make_ctx(
    client: FakeClient,
    running: Iterable[str] = ("acme",),
    *,
    stopped: Iterable[str] = (),
    known: bool = True,
    now: Callable[[], float] = lambda: NOW,
    concurrency: int = 4,
) -> CollectContext:
    refs = [InstanceRef(i, "running") for i in running] + [
        InstanceRef(i, "stopped") for i in stopped
    ]
    return CollectContext(
        target=TARGET,
        client=client,  # type: ignore[arg-type]
        instance_filter="*",
        concurrency=concurrency,
        known_instances=refs if known else None,
        now=now,
    )


@dataclasses.dataclass
class Collected:
    """A run's result and the samples it put into its sink."""

    result: CollectResult
    samples: list[Sample]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.result, name)  # success, instance_outcomes, errors, instances


def collect(collector: Collector, ctx: CollectContext) -> Collected:
    """Run ``collector`` with a fresh ``SampleList`` sink; its result and samples."""
    sink = SampleList()
    result = collector.collect(dataclasses.replace(ctx, sink=sink))
    return Collected(result, sink.samples)


def series(samples: Iterable[Sample], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of one name: labels (without target) -> value."""
    out = {}
    for sample in samples:
        if sample.name == name:
            assert sample.labels[0] == ("target", TARGET)
            out[sample.labels[1:]] = sample.value
    return out


def value(samples: Iterable[Sample], name: str, **labels: str) -> float:
    """The value of the one sample of ``name`` whose labels include ``labels``."""
    matches = [
        s.value
        for s in samples
        if s.name == name and set(labels.items()) <= set(s.labels)
    ]
    assert len(matches) == 1, f"{len(matches)} samples of {name} match {labels}"
    return matches[0]


def states(samples: Iterable[Sample], name: str, state_label: str, **labels: str) -> dict:
    """A state set as {state: value} for the series matching ``labels``."""
    out = {}
    for s in samples:
        pairs = dict(s.labels)
        if s.name == name and all(pairs.get(k) == v for k, v in labels.items()):
            out[pairs[state_label]] = s.value
    return out
