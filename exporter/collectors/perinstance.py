"""Base class of collectors that query every running instance separately.

Collectors that remember something per instance between runs keep it in an
``InstanceStates``. After each run the state of every instance of the run's target
that is no longer in SPE's instance list is dropped, so memory is bounded by the
instances that exist rather than by every instance ever seen. A stopped instance is
still listed and keeps its state, as does an instance whose poll failed; if the list
cannot be obtained, the run fails before anything is dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable
from typing import Any, Generic, TypeVar

from exporter.collectors.base import (
    CollectContext,
    Collector,
    CollectResult,
    InstanceRef,
    describe_error,
    map_instances,
)
from exporter.collectors.instances import fetch_instance_rows
from exporter.samples import Sample
from exporter.spe.errors import SPEAccessRefusedError

RUNNING = "running"

S = TypeVar("S")


def instance_refs(ctx: CollectContext) -> list[InstanceRef]:
    """SPE's instance list: the instances collector's latest one; without one, GetInstances."""
    if ctx.known_instances is not None:
        return ctx.known_instances
    return [row.ref() for row in fetch_instance_rows(ctx)]


def running_ids(refs: Iterable[InstanceRef]) -> list[str]:
    """Ids of running instances: a stopped instance cannot answer, so it is not asked."""
    return list(dict.fromkeys(ref.instance_id for ref in refs if ref.status == RUNNING))


class InstanceStates(Generic[S]):
    """What a collector remembers per (target, instance_id) between runs, under a lock."""

    def __init__(self, factory: Callable[[], S]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], S] = {}

    def get(self, target: str, instance_id: str) -> S:
        """The instance's state, created on first use."""
        key = (target, instance_id)
        with self._lock:
            state = self._states.get(key)
            if state is None:
                state = self._states[key] = self._factory()
            return state

    def forget_absent(self, target: str, existing: Collection[str]) -> None:
        """Drop the state of ``target``'s instances not in ``existing``; other targets stay."""
        with self._lock:
            gone = [k for k in self._states if k[0] == target and k[1] not in existing]
            for key in gone:
                del self._states[key]

    def keys(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._states)


class PerInstanceCollector(Collector):
    """Runs ``collect_instance`` for every running instance, isolating failures.

    A failed instance gets outcome False and contributes no samples (nothing stale is
    kept); the run succeeds only if every instance succeeded. A subclass that keeps
    per-instance state sets ``instance_states``; the run then forgets the state of
    instances that are no longer in the instance list (see the module docstring).
    """

    per_instance = True
    instance_states: InstanceStates[Any] | None = None

    def collect_instance(self, ctx: CollectContext, instance_id: str) -> list[Sample]:
        raise NotImplementedError

    def run(self, ctx: CollectContext) -> CollectResult:
        refs = instance_refs(ctx)
        instance_ids = running_ids(refs)

        def work(instance_id: str) -> None:
            # Put from the worker: nothing per instance waits for the end of the run.
            ctx.sink.put(self.collect_instance(ctx, instance_id), instance_id)

        outcomes: dict[str, bool] = {}
        errors: list[str] = []
        access_off: list[str] = []
        for instance_id, result in map_instances(ctx, instance_ids, work).items():
            if isinstance(result, SPEAccessRefusedError):
                # The tenant switched service provider access off: not a failure, and
                # no outcome either (exporter.collectors.access).
                access_off.append(instance_id)
                if ctx.access is not None:
                    ctx.access.refused(instance_id, self.name)
                continue
            outcomes[instance_id] = not isinstance(result, Exception)
            if isinstance(result, Exception):
                errors.append(f"instance {instance_id}: {describe_error(result)}")
            elif ctx.access is not None:
                ctx.access.answered(instance_id, self.name)
        if self.instance_states is not None:
            # Any listed instance, stopped or failed, keeps its state; only deleted ones go.
            self.instance_states.forget_absent(ctx.target, {ref.instance_id for ref in refs})
        return CollectResult(
            success=all(outcomes.values()),
            instance_outcomes=outcomes,
            errors=errors,
            access_off=access_off,
        )
