"""Service collector: GetServiceStatus -> SPE roles, instance hosts, dashboard messages.

``mailstore_spe_up`` is not produced here: the scheduler derives it from this
collector's and the environment collector's success.

Dashboard messages are SPE's own alert feed. An entry with ``isSubItem`` true details the
entry before it, so only top-level entries are counted (by severity and by a category
derived from the text; the category set is fixed, so the series stay bounded).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from exporter.collectors.base import CollectContext, Collector, CollectResult
from exporter.collectors.parsing import Record
from exporter.samples import Sample, SampleBuilder

FUNCTION = "GetServiceStatus"

SEVERITIES = ("information", "warning", "error")
MANAGEMENT_SERVER = "managementServer"

# Categories of dashboard messages, first match wins. Patterns follow texts seen on real
# SPE systems (spe-api-notes §2.2) and the console's message list (updates, licence
# problems, index rebuilds, SMTP security); anything else is "other".
MESSAGE_CATEGORIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("update", re.compile(r"\bversion\b.*\bavailable\b|\bupdate\b", re.I)),
    ("license", re.compile(r"\blicen[cs]", re.I)),
    ("search_index", re.compile(r"\bsearch index", re.I)),
    ("smtp", re.compile(r"\bSMTP\b", re.I)),
    ("certificate", re.compile(r"\bcertificate", re.I)),
)
OTHER = "other"


def message_category(text: str) -> str:
    for category, pattern in MESSAGE_CATEGORIES:
        if pattern.search(text):
            return category
    return OTHER


def top_level_messages(rec: Record) -> list[Record]:
    """Dashboard messages without their sub-items (``isSubItem`` missing means top level)."""
    return [m for m in rec.records("messages") if not m.flag_or_none("isSubItem")]


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


# The status page lists at most this many dashboard messages, each cut to this length.
MAX_NOTES = 30
MAX_NOTE_CHARS = 300


def message_notes(result: Any) -> list[str]:
    """SPE's dashboard messages as status page lines: "severity: text", sub-items indented."""
    notes = []
    for message in Record(result, FUNCTION).records("messages"):
        text = " ".join(message.text("text").split())[:MAX_NOTE_CHARS]
        if message.flag_or_none("isSubItem"):
            notes.append(f"    {text}")
        else:
            notes.append(f"{message.text('type')}: {text}")
    if len(notes) > MAX_NOTES:
        notes[MAX_NOTES:] = [f"... and {len(notes) - MAX_NOTES} more"]
    return notes


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

    messages = top_level_messages(rec)
    counts = Counter(message.text("type") for message in messages)
    for severity in (*SEVERITIES, *sorted(set(counts) - set(SEVERITIES))):
        out.add("mailstore_spe_service_messages", counts[severity], message_severity=severity)
    categories = Counter(message_category(message.text("text")) for message in messages)
    for category in (*(c for c, _ in MESSAGE_CATEGORIES), OTHER):
        out.add("mailstore_spe_service_messages_by_category", categories[category],
                category=category)
    return out.samples


class ServiceCollector(Collector):
    name = "service"
    interval = 60.0
    functions = (FUNCTION,)

    def run(self, ctx: CollectContext) -> CollectResult:
        result = ctx.client.call(FUNCTION)
        ctx.sink.put(parse_service_status(ctx.target, result))
        return CollectResult(success=True, notes=message_notes(result))
