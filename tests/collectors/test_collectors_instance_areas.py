"""Per-instance collectors: statistics, process, stores, users, compliance, credentials."""

from __future__ import annotations

from collectors_testkit import (
    NOW,
    TARGET,
    FakeClient,
    by_instance,
    collect,
    make_ctx,
    series,
    states,
    value,
)

from exporter.collectors.compliance import parse_compliance
from exporter.collectors.credentials import parse_credentials
from exporter.collectors.process import ProcessCollector, parse_process
from exporter.collectors.statistics import StatisticsCollector, parse_statistics
from exporter.collectors.stores import StoresCollector, parse_stores
from exporter.collectors.users import UsersCollector, parse_users
from exporter.spe.errors import SPEAPIError

MB = 1048576

STATISTICS = {"totalSizeMB": 917522, "databaseFileSizeMB": 16182,
              "contentFileSizeMB": 881094, "indexFileSizeMB": 20246,
              "numberOfMessages": 12423896}

PROCESS = {
    "processUniqueID": "00000000-1111-2222-3333-444444444444", "timestamp": 1777748859517,
    "totalProcessorMilliseconds": 555423609, "totalIOReadBytes": 3382803688129,
    "totalIOWriteBytes": 114295160929, "totalIOOtherBytes": 2691520888,
    "totalRemoteProcedureCalls": 30215, "totalMessagesArchived": 35944,
    "totalMessagesChecked": 194843282, "currentPrivateMemoryBytes": 667754496,
}


def _store(store_id, name, state, *, error=None, upgrade=False, rebuild=False, size=1000,
           count=10):
    return {"id": store_id, "name": name, "requestedState": state, "error": error,
            "statisticsCount": count, "statisticsSize": size, "needsUpgrade": upgrade,
            "searchIndexesNeedRebuild": rebuild, "databasePath": "E:\\ACME\\Data\\x",
            "contentPath": "E:\\ACME\\Data\\x\\Content", "indexPath": "E:\\ACME\\Data\\x\\Index"}


STORES = [
    _store(13, "2018-11", "current", size=698529585005, count=9527315, rebuild=True),
    _store(14, "2017", "normal", error="Database file is locked.", upgrade=True),
    _store(15, "old", "offline"),
]

USERS = [
    {"userName": "$archiveadmin", "fullName": None, "distinguishedName": None,
     "mfaStatus": "Disabled"},
    {"userName": "admin", "fullName": "Admin", "distinguishedName": None,
     "mfaStatus": "Disabled"},
    {"userName": "jdoe", "fullName": "John Doe", "distinguishedName": "CN=John Doe,OU=x",
     "mfaStatus": "Disabled"},
]

CREDENTIALS = [
    {"ID": 2, "Type": "Office365_Modern", "Description": "Microsoft 365",
     "Settings": {"ApplicationId": "guid", "TenantId": "guid",
                  "CertificateThumbprint": "AB" * 20,
                  "CertificateExpirationDate": "2026-07-15T10:58:01Z"}},
    {"ID": 3, "Type": "Password", "Description": "IMAP", "Settings": {"UserName": "x"}},
    {"ID": 4, "Type": "Other", "Description": "no settings", "Settings": None},
]


def test_statistics_converts_mb_to_bytes() -> None:
    samples = parse_statistics(TARGET, "acme", STATISTICS)
    assert value(samples, "mailstore_spe_instance_archive_size_bytes") == 917522 * MB
    assert value(samples, "mailstore_spe_instance_database_size_bytes") == 16182 * MB
    assert value(samples, "mailstore_spe_instance_content_size_bytes") == 881094 * MB
    assert value(samples, "mailstore_spe_instance_index_size_bytes") == 20246 * MB
    assert value(samples, "mailstore_spe_instance_messages") == 12423896


def test_process_counters_are_exported_as_is_in_base_units() -> None:
    samples = parse_process(TARGET, "acme", PROCESS)
    assert value(samples, "mailstore_spe_instance_process_cpu_seconds_total") == 555423.609
    assert value(samples, "mailstore_spe_instance_process_io_read_bytes_total") == 3382803688129
    assert value(samples, "mailstore_spe_instance_process_io_write_bytes_total") == 114295160929
    assert value(samples, "mailstore_spe_instance_process_io_other_bytes_total") == 2691520888
    assert value(samples, "mailstore_spe_instance_process_messages_archived_total") == 35944
    assert value(samples, "mailstore_spe_instance_process_messages_checked_total") == 194843282
    assert value(samples, "mailstore_spe_instance_process_private_memory_bytes") == 667754496


def test_process_restarts_count_changes_of_process_unique_id() -> None:
    current = dict(PROCESS)
    client = FakeClient({"GetInstanceProcessLiveStatistics": lambda **_: current})
    collector = ProcessCollector()
    clock = {"now": NOW}

    def poll() -> list:
        result = collect(collector, make_ctx(client, now=lambda: clock["now"]))
        assert result.success, result.errors
        return result.samples

    def seen(samples) -> tuple[float, float]:
        return (value(samples, "mailstore_spe_instance_process_restarts_total"),
                value(samples, "mailstore_spe_instance_process_first_seen_timestamp_seconds"))

    assert seen(poll()) == (0, NOW)  # first sight: no restart, first seen now
    clock["now"] += 60
    assert seen(poll()) == (0, NOW)  # same process
    current["processUniqueID"] = "11111111-0000-0000-0000-000000000000"
    clock["now"] += 60
    assert seen(poll()) == (1, NOW + 120)
    # A malformed result fails the instance and changes nothing remembered.
    current.pop("totalIOReadBytes")
    current["processUniqueID"] = "22222222-0000-0000-0000-000000000000"
    clock["now"] += 60
    assert not collect(collector, make_ctx(client, now=lambda: clock["now"])).success
    current["totalIOReadBytes"] = 1
    current["processUniqueID"] = "11111111-0000-0000-0000-000000000000"
    clock["now"] += 60
    assert seen(poll()) == (1, NOW + 120)
    # A result without processUniqueID keeps the last known process.
    current.pop("processUniqueID")
    assert seen(poll()) == (1, NOW + 120)


def test_stores_sizes_health_and_state_set() -> None:
    samples = parse_stores(TARGET, "acme", STORES)
    assert value(samples, "mailstore_spe_store_size_bytes", store_id="13",
                 store_name="2018-11") == 698529585005  # already bytes
    assert value(samples, "mailstore_spe_store_messages", store_id="13") == 9527315
    assert series(samples, "mailstore_spe_store_error") == {
        (("instance_id", "acme"), ("store_id", "13"), ("store_name", "2018-11")): 0,
        (("instance_id", "acme"), ("store_id", "14"), ("store_name", "2017")): 1,
        (("instance_id", "acme"), ("store_id", "15"), ("store_name", "old")): 0,
    }
    assert value(samples, "mailstore_spe_store_needs_upgrade", store_id="14") == 1
    assert value(samples, "mailstore_spe_store_search_indexes_need_rebuild", store_id="13") == 1
    state = "mailstore_spe_store_state"
    assert states(samples, state, "state", store_id="14") == {
        "current": 0, "normal": 1, "writeProtected": 0, "disabled": 0
    }
    assert states(samples, state, "state", store_id="15") == {
        "current": 0, "normal": 0, "writeProtected": 0, "disabled": 0, "offline": 1
    }


def test_users_exclude_archiveadmin() -> None:
    samples = parse_users(TARGET, "acme", USERS)
    assert value(samples, "mailstore_spe_instance_users", instance_id="acme") == 2
    assert states(samples, "mailstore_spe_instance_users_by_mfa_status", "mfa_status") == {
        "Disabled": 2, "Enabled": 0
    }


def test_users_by_mfa_status_keep_spe_spelling_and_unknown_values() -> None:
    users = [*USERS, {"userName": "a", "mfaStatus": "Enabled"},
             {"userName": "b", "mfaStatus": "Initialized"}, {"userName": "c"}]
    samples = parse_users(TARGET, "acme", users)
    assert states(samples, "mailstore_spe_instance_users_by_mfa_status", "mfa_status") == {
        "Disabled": 2, "Enabled": 1, "Initialized": 1, "": 1
    }
    assert value(samples, "mailstore_spe_instance_users", instance_id="acme") == 5


def test_compliance_legal_hold() -> None:
    on = parse_compliance(TARGET, "acme", {"legalHoldEnabled": True,
                                           "logSuccessfulUserActivities": []})
    assert value(on, "mailstore_spe_instance_legal_hold_enabled") == 1


def test_credentials_pascal_case_and_only_with_expiry() -> None:
    samples = parse_credentials(TARGET, "acme", CREDENTIALS)
    assert series(samples, "mailstore_spe_credential_certificate_expiry_timestamp_seconds") == {
        (("instance_id", "acme"), ("credential_id", "2"),
         ("credential_type", "Office365_Modern")): 1784113081.0
    }


def test_one_instance_without_provider_access_does_not_fail_the_others() -> None:
    denied = SPEAPIError("Service provider access is disabled", function="GetUsers")
    client = FakeClient({"GetUsers": by_instance({"acme": USERS, "beta": denied,
                                                  "gamma": USERS[:1]})})
    ctx = make_ctx(client, running=["acme", "beta", "gamma"], stopped=["delta"])
    result = collect(UsersCollector(), ctx)
    assert result.success is False
    assert result.instance_outcomes == {"acme": True, "beta": False, "gamma": True}
    assert series(result.samples, "mailstore_spe_instance_users") == {
        (("instance_id", "acme"),): 2, (("instance_id", "gamma"),): 0
    }
    assert result.errors == ["instance beta: GetUsers: Service provider access is disabled"]
    # The stopped instance is never asked.
    assert sorted(a["instanceID"] for a in client.calls_of("GetUsers")) == [
        "acme", "beta", "gamma"
    ]


def test_malformed_results_fail_only_their_instance_with_a_clear_message() -> None:
    client = FakeClient({"GetInstanceStatistics": by_instance({
        "acme": STATISTICS,
        "beta": {**STATISTICS, "totalSizeMB": "917522 MB"},
        "gamma": {k: v for k, v in STATISTICS.items() if k != "numberOfMessages"},
        "delta": None,
    })})
    ctx = make_ctx(client, running=["acme", "beta", "gamma", "delta"])
    result = collect(StatisticsCollector(), ctx)
    assert result.instance_outcomes == {"acme": True, "beta": False, "gamma": False,
                                        "delta": False}
    assert result.errors == [
        "instance beta: GetInstanceStatistics: result.totalSizeMB: expected a number, "
        "got str '917522 MB'",
        "instance gamma: GetInstanceStatistics: result.numberOfMessages: missing, "
        "expected a number",
        "instance delta: GetInstanceStatistics: result: expected an object, got null",
    ]
    # Nothing half-parsed leaks out of a failed instance.
    assert {dict(s.labels)["instance_id"] for s in result.samples} == {"acme"}


def test_stores_collector_asks_with_include_size_and_handles_null_list() -> None:
    client = FakeClient({"GetStores": by_instance({"acme": STORES, "beta": None})})
    result = collect(StoresCollector(), make_ctx(client, running=["acme", "beta"]))
    assert client.calls_of("GetStores")[0] == {"instanceID": "acme", "includeSize": True}
    assert result.instance_outcomes == {"acme": True, "beta": False}
    assert result.errors == ["instance beta: GetStores: result: expected a list, got null"]


def test_without_known_instances_the_collector_asks_get_instances() -> None:
    instances = [{"instanceID": "acme", "status": "running"},
                 {"instanceID": "beta", "status": "stopped"}]
    client = FakeClient({"GetInstances": instances, "GetUsers": USERS})
    result = collect(UsersCollector(), make_ctx(client, known=False))
    assert result.success and result.instance_outcomes == {"acme": True}
    assert client.calls[0] == ("GetInstances", {"instanceFilter": "*"})


def test_no_running_instance_is_a_success_with_no_samples() -> None:
    client = FakeClient({})
    result = collect(UsersCollector(), make_ctx(client, running=[], stopped=["beta"]))
    assert (result.success, result.samples, result.instance_outcomes) == (True, [], {})


def test_the_schedulers_sink_renders_each_instance_as_its_samples() -> None:
    """The scheduler's sink renders per-instance samples in the worker (memory bound at
    scale); what reaches /metrics must be the rendering of what the collector built."""
    import dataclasses

    from exporter.exposition import render_blocks
    from exporter.snapshot import RunSink

    denied = SPEAPIError("Service provider access is disabled", function="GetUsers")
    client = FakeClient({"GetUsers": by_instance({"acme": USERS, "beta": denied,
                                                  "gamma": USERS[:1]})})
    ctx = make_ctx(client, running=["acme", "beta", "gamma"])
    plain = collect(UsersCollector(), ctx)
    sink = RunSink()
    rendered = UsersCollector().collect(dataclasses.replace(ctx, sink=sink))
    assert rendered.instance_outcomes == plain.instance_outcomes
    groups = sink.writer.finish(123.0)
    assert groups.keys == ["acme", "gamma"]
    for index, instance_id in enumerate(groups.keys):
        expected = render_blocks(
            s for s in plain.samples if ("instance_id", instance_id) in s.labels
        )
        assert expected and groups.group(index) == (123.0, expected)
