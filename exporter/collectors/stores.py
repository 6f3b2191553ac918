"""Stores collector: GetStores (includeSize=true) -> size, messages, state and health."""

from __future__ import annotations

from typing import Any

from exporter.collectors.base import CollectContext
from exporter.collectors.parsing import records_of
from exporter.collectors.perinstance import PerInstanceCollector
from exporter.samples import Sample, SampleBuilder

FUNCTION = "GetStores"

STORE_STATES = ("current", "normal", "writeProtected", "disabled")


def parse_stores(target: str, instance_id: str, result: Any) -> list[Sample]:
    out = SampleBuilder(target)
    for store in records_of(result, FUNCTION):
        labels = {
            "instance_id": instance_id,
            "store_id": store.identifier("id"),
            "store_name": store.text_or_none("name"),
        }
        # Sizes are filled because we ask with includeSize=true; null means SPE had none.
        size = store.number_or_none("statisticsSize")  # already bytes
        if size is not None:
            out.add("mailstore_spe_store_size_bytes", size, **labels)
        count = store.number_or_none("statisticsCount")
        if count is not None:
            out.add("mailstore_spe_store_messages", count, **labels)
        out.state_set(
            "mailstore_spe_store_state", "state", STORE_STATES,
            store.text("requestedState"), **labels,
        )
        out.add("mailstore_spe_store_error", store.raw("error") not in (None, ""), **labels)
        out.add("mailstore_spe_store_needs_upgrade", store.flag("needsUpgrade"), **labels)
        out.add(
            "mailstore_spe_store_search_indexes_need_rebuild",
            store.flag("searchIndexesNeedRebuild"),
            **labels,
        )
    return out.samples


class StoresCollector(PerInstanceCollector):
    name = "stores"
    interval = 300.0
    functions = (FUNCTION,)

    def collect_instance(self, ctx: CollectContext, instance_id: str) -> list[Sample]:
        result = ctx.client.call(FUNCTION, instanceID=instance_id, includeSize=True)
        return parse_stores(ctx.target, instance_id, result)
