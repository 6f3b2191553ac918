"""Compliance collector: GetComplianceConfiguration -> legal hold per instance."""

from __future__ import annotations

from typing import Any

from exporter.collectors.base import CollectContext
from exporter.collectors.parsing import Record
from exporter.collectors.perinstance import PerInstanceCollector
from exporter.samples import Sample, SampleBuilder

FUNCTION = "GetComplianceConfiguration"


def parse_compliance(target: str, instance_id: str, result: Any) -> list[Sample]:
    rec = Record(result, FUNCTION)
    out = SampleBuilder(target)
    out.add(
        "mailstore_spe_instance_legal_hold_enabled", rec.flag("legalHoldEnabled"),
        instance_id=instance_id,
    )
    return out.samples


class ComplianceCollector(PerInstanceCollector):
    name = "compliance"
    interval = 3600.0
    functions = (FUNCTION,)

    def collect_instance(self, ctx: CollectContext, instance_id: str) -> list[Sample]:
        return parse_compliance(
            ctx.target, instance_id, ctx.client.call(FUNCTION, instanceID=instance_id)
        )
