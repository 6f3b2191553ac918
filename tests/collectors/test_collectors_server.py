"""Environment, service and instances collectors (no per-instance calls)."""

from __future__ import annotations

import pytest
from collectors_testkit import TARGET, FakeClient, collect, make_ctx, series, states, value

from exporter.collectors.base import InstanceRef, ParseError
from exporter.collectors.environment import EnvironmentCollector, parse_environment
from exporter.collectors.instances import InstancesCollector, instance_samples, parse_instance_rows
from exporter.collectors.service import ServiceCollector, message_notes, parse_service_status
from exporter.spe.errors import SPEConnectionError

ENVIRONMENT = {
    "version": "25.3.1.23021",
    "webClientVersion": "25.3.1.23021",
    "copyright": "Copyright (c) 2005-2025 MailStore Software GmbH",
    "licenseeName": "Example Hosting Ltd.",
    "licenseeID": 12345,
    "serverName": "spe.example.com",
    "userName": "admin",
    "systemProperties": {
        "processors": ["Intel(R) Xeon(R) CPU"] * 4,
        "totalPhysicalMemory": 8589398016,
        "operatingSystem": "Microsoft Windows Server 2022 Standard",
    },
}
THUMB = "0123456789ABCDEF0123456789ABCDEF01234567"


def _server(name, port, kind, *, active=True, props=None, n=None, running=None, thumb=THUMB):
    return {
        "serverName": name, "port": port, "serverCertificate": {"thumbprint": thumb},
        "serverType": kind, "active": active, "systemProperties": props,
        "numberOfInstances": n, "numberOfRunningInstances": running,
    }


def _message(kind: str) -> dict:
    return {"type": kind, "text": "...", "isSubItem": False, "tag": None, "flags": None}


SERVICE_STATUS = {
    "environmentInfo": ENVIRONMENT,
    "serverInfos": [
        _server("spe.example.com", 8473, "clientAccessServer",
                props={"processors": ["x"] * 2, "totalPhysicalMemory": 4294967296,
                       "operatingSystem": "..."}),
        _server("spe.example.com", 8471, "managementServer"),
        _server("ih01", 8472, "instanceHost", active=False, n=3, running=2,
                props={"processors": ["x"] * 8, "totalPhysicalMemory": 17179869184,
                       "operatingSystem": "..."}),
    ],
    "messages": [_message("warning"), _message("warning"), _message("error"),
                 _message("critical")],
}


def test_environment_info() -> None:
    samples = parse_environment(TARGET, ENVIRONMENT)
    assert series(samples, "mailstore_spe_info") == {
        (("version", "25.3.1.23021"), ("web_client_version", "25.3.1.23021"),
         ("server_name", "spe.example.com"), ("licensee_name", "Example Hosting Ltd."),
         ("licensee_id", "12345")): 1.0
    }


def test_environment_without_web_client_version_is_fine() -> None:
    old = {k: v for k, v in ENVIRONMENT.items() if k != "webClientVersion"}
    samples = parse_environment(TARGET, old)
    assert value(samples, "mailstore_spe_info", web_client_version="") == 1


def test_service_roles() -> None:
    samples = parse_service_status(TARGET, SERVICE_STATUS)
    assert series(samples, "mailstore_spe_server_active") == {
        (("server_name", "spe.example.com"), ("server_type", "clientAccessServer"),
         ("port", "8473")): 1.0,
        (("server_name", "spe.example.com"), ("server_type", "managementServer"),
         ("port", "8471")): 1.0,
        (("server_name", "ih01"), ("server_type", "instanceHost"), ("port", "8472")): 0.0,
    }
    memory = series(samples, "mailstore_spe_server_memory_bytes")
    assert memory[(("server_name", "ih01"), ("server_type", "instanceHost"))] == 17179869184
    # The management server's entry has systemProperties null: environmentInfo fills in.
    assert memory[(("server_name", "spe.example.com"), ("server_type", "managementServer"))] == (
        8589398016
    )
    assert value(samples, "mailstore_spe_server_processors", server_type="instanceHost") == 8
    assert value(samples, "mailstore_spe_server_processors", server_type="managementServer") == 4
    assert value(samples, "mailstore_spe_server_certificate_info", server_name="ih01",
                 thumbprint=THUMB) == 1
    # Only instance hosts report instance counts.
    assert series(samples, "mailstore_spe_instance_host_instances") == {
        (("server_name", "ih01"),): 3.0
    }
    assert series(samples, "mailstore_spe_instance_host_running_instances") == {
        (("server_name", "ih01"),): 2.0
    }


def test_service_messages_always_have_three_severities_plus_unknown_types() -> None:
    samples = parse_service_status(TARGET, SERVICE_STATUS)
    assert states(samples, "mailstore_spe_service_messages", "message_severity") == {
        "information": 0, "warning": 2, "error": 1, "critical": 1
    }
    quiet = parse_service_status(TARGET, {**SERVICE_STATUS, "messages": []})
    assert states(quiet, "mailstore_spe_service_messages", "message_severity") == {
        "information": 0, "warning": 0, "error": 0
    }


def test_service_message_sub_items_are_not_counted_and_categories_are_bounded() -> None:
    def msg(kind: str, text: str, sub: object = False) -> dict:
        return {"type": kind, "text": text, "isSubItem": sub, "tag": None, "flags": None}

    messages = [
        msg("information", "A new MailStore Service Provider Edition version (26.2.0.24007) "
            "is available."),
        msg("error", "Instance globex on ih01: One or more search indexes have to be rebuilt."),
        msg("error", "Archive store 2024", sub=True),
        msg("error", "Archive store 2025", sub="true"),  # a string flag is read too
        msg("warning", "The license could not be updated."),
        msg("warning", "The SMTP settings are configured to use an unencrypted connection."),
        msg("error", "Something nobody has seen before."),
        {"type": "warning", "text": "No isSubItem key at all: top level."},
    ]
    samples = parse_service_status(TARGET, {**SERVICE_STATUS, "messages": messages})
    assert states(samples, "mailstore_spe_service_messages", "message_severity") == {
        "information": 1, "warning": 3, "error": 2
    }
    assert states(samples, "mailstore_spe_service_messages_by_category", "category") == {
        "update": 1, "license": 1, "search_index": 1, "smtp": 1, "certificate": 0, "other": 2
    }
    bad = {**SERVICE_STATUS, "messages": [msg("error", "x", sub="maybe")]}
    with pytest.raises(ParseError, match=r"messages\[0\]\.isSubItem: expected true or false"):
        parse_service_status(TARGET, bad)


def test_dashboard_messages_become_bounded_status_page_notes() -> None:
    def msg(text: str, sub: bool = False) -> dict:
        return {"type": "warning", "text": text, "isSubItem": sub}

    notes = message_notes({"messages": [msg("Licence\r\n  expires"), msg("detail", True)]})
    assert notes == ["warning: Licence expires", "    detail"]
    many = message_notes({"messages": [msg("x" * 1000)] * 40})
    assert len(many) == 31 and many[-1] == "... and 10 more"
    assert many[0] == "warning: " + "x" * 300
    result = ServiceCollector().collect(make_ctx(FakeClient({"GetServiceStatus": {
        **SERVICE_STATUS, "messages": [msg("SMTP is not encrypted.")]}})))
    assert result.success and result.notes == ["warning: SMTP is not encrypted."]


def test_service_collector_with_null_server_list_fails_clearly() -> None:
    client = FakeClient({"GetServiceStatus": {**SERVICE_STATUS, "serverInfos": None}})
    result = collect(ServiceCollector(), make_ctx(client))
    assert not result.success and result.samples == []
    assert result.errors == ["GetServiceStatus: result.serverInfos: null, expected a list"]


def test_environment_collector_reports_connection_errors() -> None:
    client = FakeClient({"GetEnvironmentInfo": SPEConnectionError("refused",
                                                                  function="GetEnvironmentInfo")})
    result = collect(EnvironmentCollector(), make_ctx(client))
    assert (result.success, result.errors) == (False, ["GetEnvironmentInfo: refused"])


INSTANCES = [
    {"instanceID": "acme", "alias": "acm", "displayName": "ACME Corp", "instanceHost": "ih01",
     "startMode": "automatic", "processID": 5092, "status": "running", "startStopError": None},
    {"instanceID": "beta", "alias": "bet", "displayName": "Beta", "instanceHost": "ih01",
     "startMode": "manual", "processID": None, "status": "stopped",
     "startStopError": "The instance could not be started."},
    {"instanceID": "gamma", "alias": None, "displayName": "Gamma", "instanceHost": "ih01",
     "startMode": "automatic", "processID": None, "status": "safeMode", "startStopError": None},
]


def test_instances_info_status_and_errors() -> None:
    samples = instance_samples(TARGET, parse_instance_rows(INSTANCES))
    assert value(samples, "mailstore_spe_instance_info", instance_id="acme") == 1
    assert series(samples, "mailstore_spe_instance_info")[
        (("instance_id", "gamma"), ("alias", ""), ("display_name", "Gamma"),
         ("instance_host", "ih01"), ("start_mode", "automatic"))
    ] == 1
    status = "mailstore_spe_instance_status"
    assert states(samples, status, "status", instance_id="beta") == {
        "running": 0, "stopped": 1, "starting": 0, "stopping": 0, "frozen": 0
    }
    assert states(samples, status, "status", instance_id="gamma") == {
        "running": 0, "stopped": 0, "starting": 0, "stopping": 0, "frozen": 0, "safeMode": 1
    }
    errors = series(samples, "mailstore_spe_instance_start_stop_error")
    assert errors == {(("instance_id", "acme"),): 0, (("instance_id", "beta"),): 1,
                      (("instance_id", "gamma"),): 0}


def test_instances_collector_passes_filter_and_returns_instance_list() -> None:
    client = FakeClient({"GetInstances": INSTANCES})
    ctx = make_ctx(client)
    ctx.instance_filter = "ac*"
    result = collect(InstancesCollector(), ctx)
    assert result.success
    assert client.calls == [("GetInstances", {"instanceFilter": "ac*"})]
    assert result.instances == [InstanceRef("acme", "running"), InstanceRef("beta", "stopped"),
                                InstanceRef("gamma", "safeMode")]


def test_instances_collector_with_missing_status_fails_clearly() -> None:
    broken = [dict(INSTANCES[0]), {k: v for k, v in INSTANCES[1].items() if k != "status"}]
    result = collect(InstancesCollector(), make_ctx(FakeClient({"GetInstances": broken})))
    assert not result.success and result.instances is None
    assert result.errors == ["GetInstances: result[1].status: missing, expected a string"]
