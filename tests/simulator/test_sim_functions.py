"""Result shapes and field names of the monitoring functions (spe-api-notes §2.2)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from exporter.simulator import DEFAULT_SCENARIO, load_scenario

from .conftest import SimApi

SCENARIO = load_scenario(DEFAULT_SCENARIO)
ACME = next(i for i in SCENARIO.instances if i.id == "acme")


def test_service_status_roles_ports_thumbprints_and_host_counts(api: SimApi) -> None:
    status = api.result("GetServiceStatus")
    roles = {(s["serverType"], s["serverName"]): s for s in status["serverInfos"]}
    mgmt = roles[("managementServer", "spe.example.com")]
    assert mgmt["port"] == 8471 and mgmt["systemProperties"] is None
    assert mgmt["serverCertificate"]["thumbprint"] == api.sim.thumbprint_sha1
    assert roles[("clientAccessServer", "spe.example.com")]["port"] == 8473
    ih02 = roles[("instanceHost", "ih02")]
    assert ih02["port"] == 8472 and ih02["active"] is True
    # initech, umbrella (stopped), hooli
    assert (ih02["numberOfInstances"], ih02["numberOfRunningInstances"]) == (3, 2)
    assert mgmt["numberOfInstances"] is None and mgmt["numberOfRunningInstances"] is None
    assert {m["type"] for m in status["messages"]} == {"information", "warning", "error"}
    assert set(status["messages"][0]) == {"type", "text", "isSubItem", "tag", "flags"}
    assert status["environmentInfo"]["version"] == "25.3.1.23021"


def test_thumbprint_formats(api: SimApi) -> None:
    assert re.fullmatch(r"[0-9A-F]{40}", api.sim.thumbprint_sha1)
    assert re.fullmatch(r"[0-9a-fA-F]{64}", api.sim.thumbprint_sha256)


def test_get_instances_filters(api: SimApi) -> None:
    def ids(pattern: str) -> list[str]:
        return [i["instanceID"] for i in api.result("GetInstances", instanceFilter=pattern)]

    assert ids("*") == ["acme", "globex", "initech", "umbrella", "hooli"]
    assert ids("acme,hooli") == ["acme", "hooli"]
    assert ids("g*") == ["globex"]
    assert ids("nomatch") == []
    umbrella = api.result("GetInstances", instanceFilter="umbrella")[0]
    assert umbrella["status"] == "stopped" and umbrella["processID"] is None
    assert "denied" in umbrella["startStopError"]


def test_stores_flags_and_sizes(api: SimApi) -> None:
    stores = {
        s["name"]: s for s in api.result("GetStores", instanceID="globex", includeSize="true")
    }
    assert stores["2024"]["searchIndexesNeedRebuild"] is True
    assert stores["2024"]["statisticsCount"] == 800000
    assert stores["2024"]["statisticsSize"] == 52000000000
    initech = api.result("GetStores", instanceID="initech", includeSize="true")[0]
    assert initech["needsUpgrade"] is True and initech["requestedState"] == "current"
    no_size = api.result("GetStores", instanceID="globex", includeSize="false")
    assert all(s["statisticsSize"] is None and s["statisticsCount"] is None for s in no_size)


def test_instance_statistics_are_integer_mb_and_match_stores(api: SimApi) -> None:
    stats = api.result("GetInstanceStatistics", instanceID="globex")
    assert stats == {
        "totalSizeMB": 2100 + 95000 + 3100,
        "databaseFileSizeMB": 2100,
        "contentFileSizeMB": 95000,
        "indexFileSizeMB": 3100,
        "numberOfMessages": 800000 + 450000,
    }


def test_process_live_statistics(api: SimApi) -> None:
    live = api.result("GetInstanceProcessLiveStatistics", instanceID="acme")
    assert live["processUniqueID"] == "00000000-1111-2222-3333-444444444444"
    assert abs(live["timestamp"] / 1000 - api.sim.state.now()) < 2  # epoch milliseconds
    assert live["totalProcessorMilliseconds"] >= 555423609
    assert live["currentPrivateMemoryBytes"] == 667754496


def test_users_always_include_archiveadmin(api: SimApi) -> None:
    users = api.result("GetUsers", instanceID="acme")
    assert users[0] == {
        "userName": "$archiveadmin",
        "fullName": None,
        "distinguishedName": None,
        "mfaStatus": "Disabled",
    }
    assert len(users) == 1 + len(ACME.users)


def test_credentials_are_pascal_case_with_z(api: SimApi) -> None:
    cred = api.result("GetCredentials", instanceID="globex")[0]
    assert set(cred) == {"ID", "Type", "Description", "Settings"}
    expiry = cred["Settings"]["CertificateExpirationDate"]
    assert expiry.endswith("Z")
    expires = datetime.strptime(expiry, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    assert expires < api.sim.state.now()  # globex's certificate expired 45 days ago
    soon = api.result("GetCredentials", instanceID="acme")[0]["Settings"]
    assert soon["CertificateExpirationDate"] > expiry


def test_profiles_need_raw_true(api: SimApi) -> None:
    profiles = api.result("GetProfiles", instanceID="acme", raw="true")
    assert [p["id"] for p in profiles] == [33, 34, 35]
    assert profiles[2]["serverSideExecution"]["automatic"] is False
    assert api.error("GetProfiles", instanceID="acme", raw="false")


def test_jobs_shape(api: SimApi) -> None:
    jobs = {j["id"]: j for j in api.result("GetJobs", instanceID="hooli")}
    assert jobs[4]["schedule"] == {"timeZoneId": "Pacific Standard Time", "time": "04:15:00"}
    for key in ("lastStartDateTimeUtc", "lastCompleteDateTimeUtc", "nextStartDateTimeUtc"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", jobs[4][key])  # no Z
    assert jobs[5]["enabled"] is False and jobs[5]["nextStartDateTimeUtc"] is None


def test_misc_functions(api: SimApi) -> None:
    assert api.result("Ping") is None
    assert api.result("GetArchiveAdminEnabled", instanceID="initech") is False
    assert api.result("GetComplianceConfiguration", instanceID="globex")["legalHoldEnabled"]
    hosts = api.result("GetInstanceHosts")
    assert [h["serverName"] for h in hosts] == ["ih01", "ih02"]
    assert api.result("GetInstanceHosts", serverNameFilter="ih02")[0]["serverName"] == "ih02"
    zones = {z["id"] for z in api.result("GetTimeZones", instanceID="acme")}
    assert "W. Europe Standard Time" in zones
    config = api.result("GetInstanceConfiguration", instanceID="acme")
    assert config["baseDirectory"] == "E:\\ACME" and config["vssWriterEnabled"] is True
