"""Process collector: GetInstanceProcessLiveStatistics -> instance process counters.

The ``total*`` fields are SPE's cumulative totals since the instance process started.
They are exported as-is: they reset when the process restarts, which ``rate()`` and
``increase()`` handle like any counter reset.
"""

from __future__ import annotations

from typing import Any

from exporter.collectors.base import CollectContext, Sample
from exporter.collectors.parsing import Record
from exporter.collectors.perinstance import PerInstanceCollector
from exporter.collectors.samples import SampleBuilder

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


def parse_process(target: str, instance_id: str, result: Any) -> list[Sample]:
    rec = Record(result, FUNCTION)
    out = SampleBuilder(target)
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

    def collect_instance(self, ctx: CollectContext, instance_id: str) -> list[Sample]:
        return parse_process(
            ctx.target, instance_id, ctx.client.call(FUNCTION, instanceID=instance_id)
        )
