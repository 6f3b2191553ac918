"""Environment collector: GetEnvironmentInfo -> mailstore_spe_info.

Its success (with the service collector's) decides ``mailstore_spe_up``, which the
scheduler produces.
"""

from __future__ import annotations

from typing import Any

from exporter.collectors.base import CollectContext, Collector, CollectResult
from exporter.collectors.parsing import Record
from exporter.samples import Sample, SampleBuilder

FUNCTION = "GetEnvironmentInfo"


def parse_environment(target: str, result: Any) -> list[Sample]:
    rec = Record(result, FUNCTION)
    out = SampleBuilder(target)
    out.add(
        "mailstore_spe_info", 1,
        version=rec.text("version"),
        web_client_version=rec.text_or_none("webClientVersion"),  # absent on old versions
        server_name=rec.text_or_none("serverName"),
        licensee_name=rec.text_or_none("licenseeName"),
        licensee_id=rec.identifier_or_none("licenseeID"),
    )
    return out.samples


class EnvironmentCollector(Collector):
    name = "environment"
    interval = 60.0
    functions = (FUNCTION,)

    def run(self, ctx: CollectContext) -> CollectResult:
        ctx.sink.put(parse_environment(ctx.target, ctx.client.call(FUNCTION)))
        return CollectResult(success=True)
