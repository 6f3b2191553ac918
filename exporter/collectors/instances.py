"""Instances collector: GetInstances -> instance_info, instance_status, start/stop errors.

Its result also carries the instance list (``CollectResult.instances``) that the
per-instance collectors use to decide which instances to query.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from exporter.collectors.base import CollectContext, Collector, CollectResult, InstanceRef
from exporter.collectors.parsing import records_of
from exporter.samples import Sample, SampleBuilder

FUNCTION = "GetInstances"

# Only "running" is confirmed on a real server; the others are the likely values.
INSTANCE_STATES = ("running", "stopped", "starting", "stopping", "frozen")


@dataclass(frozen=True, slots=True)
class InstanceRow:
    instance_id: str
    alias: str | None
    display_name: str | None
    instance_host: str | None
    start_mode: str | None
    status: str
    start_stop_error: bool

    def ref(self) -> InstanceRef:
        return InstanceRef(self.instance_id, self.status)


def parse_instance_rows(result: Any) -> list[InstanceRow]:
    rows = []
    for rec in records_of(result, FUNCTION):
        rows.append(
            InstanceRow(
                instance_id=rec.text("instanceID"),
                alias=rec.text_or_none("alias"),
                display_name=rec.text_or_none("displayName"),
                instance_host=rec.text_or_none("instanceHost"),
                start_mode=rec.text_or_none("startMode"),
                status=rec.text("status"),
                # A string with the last start/stop failure, or null. Any non-empty value
                # counts as "set": its type does not matter for the alert.
                start_stop_error=rec.raw("startStopError") not in (None, ""),
            )
        )
    return rows


def instance_samples(target: str, rows: list[InstanceRow]) -> list[Sample]:
    out = SampleBuilder(target)
    for row in rows:
        iid = row.instance_id
        out.add(
            "mailstore_spe_instance_info", 1, instance_id=iid, alias=row.alias,
            display_name=row.display_name, instance_host=row.instance_host,
            start_mode=row.start_mode,
        )
        out.state_set(
            "mailstore_spe_instance_status", "status", INSTANCE_STATES, row.status,
            instance_id=iid,
        )
        out.add("mailstore_spe_instance_start_stop_error", row.start_stop_error, instance_id=iid)
    return out.samples


def fetch_instance_rows(ctx: CollectContext) -> list[InstanceRow]:
    return parse_instance_rows(ctx.client.call(FUNCTION, instanceFilter=ctx.instance_filter))


class InstancesCollector(Collector):
    name = "instances"
    interval = 60.0
    functions = (FUNCTION,)

    def __init__(self) -> None:
        # Per target: the refs handed out last time. An unchanged instance gets the same
        # InstanceRef (and id string) as before instead of one parsed in this run: the
        # list lives until the next run, and thousands of small objects made mid-run and
        # kept would pin the allocator's arenas (see docs/design.md, "Memory").
        self._refs: dict[str, dict[InstanceRef, InstanceRef]] = {}
        self._lock = threading.Lock()

    def run(self, ctx: CollectContext) -> CollectResult:
        rows = fetch_instance_rows(ctx)
        with self._lock:
            previous = self._refs.get(ctx.target, {})
            refs = [previous.get(ref, ref) for ref in (row.ref() for row in rows)]
            self._refs[ctx.target] = {ref: ref for ref in refs}
        ctx.sink.put(instance_samples(ctx.target, rows))
        return CollectResult(success=True, instances=refs)
