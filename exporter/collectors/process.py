"""Process collector: GetInstanceProcessLiveStatistics -> instance process counters.

The ``total*`` fields are SPE's cumulative totals since the instance process started.
They are exported as-is: they reset when the process restarts, which ``rate()`` and
``increase()`` handle like any counter reset.

``processUniqueID`` changes when the instance process restarts (SPE reports no start
time). The collector remembers the last id per instance: a different id counts one
restart, and the time it first saw the current id is exported. Restarts between two
polls that end on the same process are invisible; two restarts between polls count one.
The memory lives while the instance is in SPE's instance list (see ``perinstance``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.collectors.base import CollectContext
from exporter.collectors.parsing import Record
from exporter.collectors.perinstance import InstanceStates, PerInstanceCollector
from exporter.samples import Sample, SampleBuilder

FUNCTION = "GetInstanceProcessLiveStatistics"

# family -> (field, factor to base units)
_COUNTERS = (
    ("mailstore_spe_instance_process_cpu_seconds", "totalProcessorMilliseconds", 0.001),
    ("mailstore_spe_instance_process_io_read_bytes", "totalIOReadBytes", 1),
    ("mailstore_spe_instance_process_io_write_bytes", "totalIOWriteBytes", 1),
    ("mailstore_spe_instance_process_io_other_bytes", "totalIOOtherBytes", 1),
    ("mailstore_spe_instance_process_messages_archived", "totalMessagesArchived", 1),
    ("mailstore_spe_instance_process_messages_checked", "totalMessagesChecked", 1),
)


@dataclass
class ProcessIdentity:
    """The instance process the exporter saw last, and how often it changed."""

    unique_id: str | None = None
    first_seen: float | None = None
    restarts: int = 0

    def observe(self, unique_id: str, now: float) -> None:
        if unique_id == self.unique_id:
            return
        if self.unique_id is not None:
            self.restarts += 1
        self.unique_id, self.first_seen = unique_id, now


def parse_process(
    target: str, instance_id: str, result: Any, identity: ProcessIdentity | None = None,
    now: float = 0.0,
) -> list[Sample]:
    rec = Record(result, FUNCTION)
    out = SampleBuilder(target)
    if identity is not None:
        unique_id = rec.text_or_none("processUniqueID")
        if unique_id is not None:
            identity.observe(unique_id, now)
        out.add("mailstore_spe_instance_process_restarts", identity.restarts,
                instance_id=instance_id)
        if identity.first_seen is not None:
            out.add("mailstore_spe_instance_process_first_seen_timestamp_seconds",
                    identity.first_seen, instance_id=instance_id)
    for family, field, factor in _COUNTERS:
        out.add(family, rec.number(field) * factor, instance_id=instance_id)
    out.add(
        "mailstore_spe_instance_process_private_memory_bytes",
        rec.number("currentPrivateMemoryBytes"),
        instance_id=instance_id,
    )
    return out.samples


class ProcessCollector(PerInstanceCollector):
    name = "process"
    interval = 60.0
    functions = (FUNCTION,)

    def __init__(self) -> None:
        self.instance_states: InstanceStates[ProcessIdentity] = InstanceStates(ProcessIdentity)

    def collect_instance(self, ctx: CollectContext, instance_id: str) -> list[Sample]:
        result = ctx.client.call(FUNCTION, instanceID=instance_id)
        # Parse into a copy: a malformed result must not change what was remembered.
        known = self.instance_states.get(ctx.target, instance_id)
        identity = ProcessIdentity(known.unique_id, known.first_seen, known.restarts)
        samples = parse_process(ctx.target, instance_id, result, identity, ctx.now())
        known.unique_id, known.first_seen, known.restarts = (
            identity.unique_id, identity.first_seen, identity.restarts
        )
        return samples
