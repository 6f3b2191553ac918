"""Service collector: GetServiceStatus -> SPE roles, instance hosts, dashboard messages.

``mailstore_spe_up`` is not produced here: the scheduler derives it from this
collector's and the environment collector's success.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from exporter.collectors.base import CollectContext, Collector, CollectResult, Sample
from exporter.collectors.parsing import Record
from exporter.collectors.samples import SampleBuilder

FUNCTION = "GetServiceStatus"

SEVERITIES = ("information", "warning", "error")
MANAGEMENT_SERVER = "managementServer"


def _system_properties(server: Record, environment: Record | None) -> Record | None:
    props = server.record_or_none("systemProperties")
    if props is not None or environment is None:
        return props
    # SPE reports the management server's serverInfos entry with systemProperties null;
    # environmentInfo describes that same machine, so use it when the names match.
    same_machine = server.text_or_none("serverName") == environment.text_or_none("serverName")
    if server.text("serverType") == MANAGEMENT_SERVER and same_machine:
        return environment.record_or_none("systemProperties")
    return None


def parse_service_status(target: str, result: Any) -> list[Sample]:
    rec = Record(result, FUNCTION)
    environment = rec.record_or_none("environmentInfo")
    out = SampleBuilder(target)

    for server in rec.records("serverInfos"):
        name = server.text("serverName")
        kind = server.text("serverType")
        out.add(
            "mailstore_spe_server_active", server.flag("active"),
            server_name=name, server_type=kind, port=server.integer_or_none("port"),
        )
        props = _system_properties(server, environment)
        if props is not None:
            memory = props.number_or_none("totalPhysicalMemory")
            if memory is not None:
                out.add(
                    "mailstore_spe_server_memory_bytes", memory, server_name=name, server_type=kind
                )
            if props.has("processors"):  # one entry per logical processor
                out.add(
                    "mailstore_spe_server_processors", len(props.items("processors")),
                    server_name=name, server_type=kind,
                )
        certificate = server.record_or_none("serverCertificate")
        thumbprint = certificate.text_or_none("thumbprint") if certificate else None
        if thumbprint:
            out.add(
                "mailstore_spe_server_certificate_info", 1,
                server_name=name, server_type=kind, thumbprint=thumbprint,
            )
        # Only instance hosts report these; other roles have null.
        instances = server.integer_or_none("numberOfInstances")
        if instances is not None:
            out.add("mailstore_spe_instance_host_instances", instances, server_name=name)
        running = server.integer_or_none("numberOfRunningInstances")
        if running is not None:
            out.add("mailstore_spe_instance_host_running_instances", running, server_name=name)

    counts = Counter(message.text("type") for message in rec.records("messages"))
    for severity in (*SEVERITIES, *sorted(set(counts) - set(SEVERITIES))):
        out.add("mailstore_spe_service_messages", counts[severity], severity=severity)
    return out.samples


class ServiceCollector(Collector):
    name = "service"
    interval = 60.0
    functions = (FUNCTION,)

    def run(self, ctx: CollectContext) -> CollectResult:
        samples = parse_service_status(ctx.target, ctx.client.call(FUNCTION))
        return CollectResult(samples=samples, success=True)
