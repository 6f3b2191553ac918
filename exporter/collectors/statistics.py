"""Statistics collector: GetInstanceStatistics -> archive sizes (MB -> bytes), messages."""

from __future__ import annotations

from typing import Any

from exporter.collectors.base import CollectContext
from exporter.collectors.parsing import Record, mb_to_bytes
from exporter.collectors.perinstance import PerInstanceCollector
from exporter.samples import Sample, SampleBuilder

FUNCTION = "GetInstanceStatistics"

# family -> field of the result, in MB
_SIZES_MB = (
    ("mailstore_spe_instance_archive_size_bytes", "totalSizeMB"),
    ("mailstore_spe_instance_database_size_bytes", "databaseFileSizeMB"),
    ("mailstore_spe_instance_content_size_bytes", "contentFileSizeMB"),
    ("mailstore_spe_instance_index_size_bytes", "indexFileSizeMB"),
)


def parse_statistics(target: str, instance_id: str, result: Any) -> list[Sample]:
    rec = Record(result, FUNCTION)
    out = SampleBuilder(target)
    for family, field in _SIZES_MB:
        out.add(family, mb_to_bytes(rec.number(field)), instance_id=instance_id)
    out.add("mailstore_spe_instance_messages", rec.number("numberOfMessages"),
            instance_id=instance_id)
    return out.samples


class StatisticsCollector(PerInstanceCollector):
    name = "statistics"
    interval = 300.0
    functions = (FUNCTION,)

    def collect_instance(self, ctx: CollectContext, instance_id: str) -> list[Sample]:
        return parse_statistics(
            ctx.target, instance_id, ctx.client.call(FUNCTION, instanceID=instance_id)
        )
