"""The simulated API functions: argument binding, access rules and one handler per function.

Argument binding follows the real server as far as it is known (spe-api-notes §1.3, §1.9):
form fields only, booleans only ``true``/``false``, a missing non-nullable argument fails,
unknown extra arguments are ignored (assumed). Result shapes and field names follow §2.2.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from . import history
from .errors import ApiError
from .scenario import ServerRole
from .state import ARCHIVE_ADMIN, MIB, InstanceRuntime, SimState
from .timezones import (
    LOCAL_ZONE_ID,
    WINDOWS_ZONES,
    format_in_zone,
    format_utc,
    parse_datetime_arg,
    resolve_zone_arg,
)

OUT_OF_RANGE = "Specified argument was out of the range of valid values."
NULLABLE_BUG = "Nullable object must have a value."


class Scope(Enum):
    SYSTEM = "system"  # no instanceID
    STORE = "store"  # instanceID; store/index functions work without service provider access
    INSTANCE = "instance"  # instanceID; no service provider access needed (our assumption)
    ACCESS = "access"  # instanceID; needs service provider access (spe-api-notes §3)
    # instanceID; the vendor's rule says it needs service provider access, but that was not
    # seen: refused only with the scenario's access_off_refuses_statistics (default true).
    STATISTICS = "statistics"
    CONFIG = "config"  # instanceID; answered by the management server, works when stopped


@dataclass(frozen=True)
class Arg:
    name: str
    type: str  # "string" | "number" | "bool" | "json", as in get-metadata
    nullable: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "nullable": self.nullable}


@dataclass
class Call:
    state: SimState
    args: dict[str, Any]
    username: str
    now: float
    instance: InstanceRuntime | None = None


@dataclass(frozen=True)
class Function:
    name: str
    args: tuple[Arg, ...]
    scope: Scope
    handler: Callable[[Call], Any]
    long_running: bool = False  # maintenance: answers "running" + token by default

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "args": [a.to_json() for a in self.args]}


REGISTRY: dict[str, Function] = {}
INSTANCE_ID = Arg("instanceID", "string")


def api(name: str, *args: Arg, scope: Scope = Scope.SYSTEM, long_running: bool = False):
    def register(handler: Callable[[Call], Any]) -> Callable[[Call], Any]:
        REGISTRY[name] = Function(name, tuple(args), scope, handler, long_running)
        return handler

    return register


def metadata() -> list[dict[str, Any]]:
    """get-metadata: the implemented functions; base functions are left out like on SPE."""
    return [fn.metadata() for fn in REGISTRY.values()]


# --------------------------------------------------------------------------- binding


def bind_args(fn: Function, form: dict[str, list[str]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for arg in fn.args:
        raw = form.get(arg.name)
        if raw is None:
            if not arg.nullable:
                # Message format of .NET's ArgumentNullException; the real text is unconfirmed.
                raise ApiError(f"Value cannot be null. (Parameter '{arg.name}')")
            values[arg.name] = None
            continue
        values[arg.name] = convert(arg, raw[0])
    return values


def convert(arg: Arg, text: str) -> Any:
    if arg.type == "bool":
        # Only lower case is accepted (R9); the message is .NET's FormatException text.
        if text == "true":
            return True
        if text == "false":
            return False
        raise ApiError(f"String '{text}' was not recognized as a valid Boolean.")
    if arg.type == "number":
        try:
            return int(text)
        except ValueError:
            raise ApiError("Input string was not in a correct format.") from None
    return text


def prepare(fn: Function, form: dict[str, list[str]], state: SimState, username: str) -> Call:
    """Bind arguments and apply instance/access rules. Raises ApiError like the server would."""
    args = bind_args(fn, form)
    call = Call(state=state, args=args, username=username, now=state.now())
    if fn.scope is Scope.SYSTEM:
        return call
    with state.lock:
        inst = state.instance(args["instanceID"])
        # The texts below are made up: the real messages have not been captured.
        if inst is None:
            raise ApiError(f"Instance '{args['instanceID']}' does not exist.")
        host = state.hosts.get(inst.spec.host.lower())
        if fn.scope is not Scope.CONFIG:
            if host is not None and not host.active:
                raise ApiError(f"Instance host '{inst.spec.host}' is not available.")
            frozen_store_list = inst.status == "frozen" and fn.name == "GetStores"
            if inst.status != "running" and not frozen_store_list:
                raise ApiError(f"Instance '{inst.id}' is not running.")
        needs_access = fn.scope is Scope.ACCESS or (
            fn.scope is Scope.STATISTICS and state.scenario.access_off_refuses_statistics
        )
        if needs_access and not inst.spec.service_provider_access:
            raise ApiError(
                f"Service provider access is not enabled for instance '{inst.id}'.",
                "Enable service provider access for this instance in the Management Console.",
            )
        call.instance = inst
    return call


def run(fn: Function, call: Call) -> Any:
    with call.state.lock:
        return fn.handler(call)


# --------------------------------------------------------------------------- helpers


def _thumbprint(state: SimState, role: ServerRole, kind: str) -> str:
    """Scenario thumbprint, else the API's own cert for roles on the API host, else derived."""
    if role.thumbprint:
        return role.thumbprint
    if role.name.lower() == state.scenario.server.name.lower() and state.api_thumbprint:
        return state.api_thumbprint
    return hashlib.sha1(f"{kind}/{role.name}".encode()).hexdigest().upper()


def _system_properties(state: SimState) -> dict[str, Any]:
    server = state.scenario.server
    return {
        "processors": list(server.processors),
        "totalPhysicalMemory": server.total_physical_memory,
        "operatingSystem": server.operating_system,
    }


def _matches(name: str, pattern_list: str) -> bool:
    """instanceFilter/serverNameFilter: "*", wildcards (* ?) and comma lists (assumed syntax)."""
    lowered = name.lower()
    patterns = [p.strip().lower() for p in pattern_list.split(",") if p.strip()]
    return any(fnmatch.fnmatchcase(lowered, p) for p in patterns)


def _inst(call: Call) -> InstanceRuntime:
    assert call.instance is not None
    return call.instance


def _store(call: Call, store_id: int):
    store = next((s for s in _inst(call).spec.stores if s.id == store_id), None)
    if store is None:
        raise ApiError(f"Archive store with ID {store_id} does not exist.")  # made up
    return store


def _utc_known(call: Call) -> bool:
    return call.state.scenario.behaviour.utc_zone_id == "known"


def _by_start(call: Call) -> bool:
    return call.state.scenario.behaviour.result_filter == "start"


def _window(call: Call, zone_arg: str) -> tuple[Any, float, float]:
    zone = resolve_zone_arg(call.args[zone_arg], call.state.local_zone, _utc_known(call))
    t_from = parse_datetime_arg(call.args["fromIncluding"], zone)
    t_to = parse_datetime_arg(call.args["toExcluding"], zone)
    return zone, t_from, t_to


# --------------------------------------------------------------------------- system functions


@api("Ping")
def ping(call: Call) -> None:
    return None


@api("GetEnvironmentInfo")
def get_environment_info(call: Call) -> dict[str, Any]:
    server = call.state.scenario.server
    return {
        "version": server.version,
        "webClientVersion": server.web_client_version,
        "copyright": server.copyright,
        "licenseeName": server.licensee_name,
        "licenseeID": server.licensee_id,
        "serverName": server.name,
        "userName": call.username,
        "systemProperties": _system_properties(call.state),
    }


def _server_info(call: Call, role: ServerRole, kind: str, props: Any, counts: Any) -> dict:
    return {
        "serverName": role.name,
        "port": role.port,
        "serverCertificate": {"thumbprint": _thumbprint(call.state, role, kind)},
        "serverType": kind,
        "active": role.active,
        "systemProperties": props,
        "numberOfInstances": counts[0] if counts else None,
        "numberOfRunningInstances": counts[1] if counts else None,
    }


@api("GetServiceStatus")
def get_service_status(call: Call) -> dict[str, Any]:
    state = call.state
    server = state.scenario.server
    props = _system_properties(state)
    infos = [
        _server_info(call, cas, "clientAccessServer", props, None)
        for cas in server.client_access_servers
    ]
    # The management server entry had systemProperties null in the real capture.
    infos.append(_server_info(call, server.management_server, "managementServer", None, None))
    for host in state.hosts.values():
        on_host = [i for i in state.instances.values() if i.spec.host.lower() == host.name.lower()]
        running = sum(1 for i in on_host if i.status == "running")
        infos.append(_server_info(call, host, "instanceHost", props, (len(on_host), running)))
    return {
        "environmentInfo": get_environment_info(call),
        "serverInfos": infos,
        "messages": [
            {"type": m.type, "text": m.text, "isSubItem": m.is_sub_item, "tag": None, "flags": None}
            for m in state.messages
        ],
    }


@api("GetInstances", Arg("instanceFilter", "string"))
def get_instances(call: Call) -> list[dict[str, Any]]:
    pattern = call.args["instanceFilter"]
    return [
        {
            "instanceID": i.id,
            "alias": i.spec.alias,
            "displayName": i.spec.display_name,
            "instanceHost": i.spec.host,
            "startMode": i.spec.start_mode,
            "processID": i.process_id(),
            "status": i.status,
            "startStopError": i.spec.start_stop_error,
        }
        for i in call.state.instances.values()
        if _matches(i.id, pattern)
    ]


@api("GetInstanceHosts", Arg("serverNameFilter", "string", nullable=True))
def get_instance_hosts(call: Call) -> list[dict[str, Any]]:
    # Shape unconfirmed (spe-api-notes §2.2): modelled on serverInfos entries.
    pattern = call.args["serverNameFilter"] or "*"
    return [
        {
            "serverName": h.name,
            "port": h.port,
            "serverCertificate": {"thumbprint": _thumbprint(call.state, h, "instanceHost")},
            "baseDirectory": h.base_directory,
        }
        for h in call.state.hosts.values()
        if _matches(h.name, pattern)
    ]


# --------------------------------------------------------------------------- instance functions


@api("GetInstanceConfiguration", INSTANCE_ID, scope=Scope.CONFIG)
def get_instance_configuration(call: Call) -> dict[str, Any]:
    spec = _inst(call).spec
    return {
        "instanceID": spec.id,
        "alias": spec.alias,
        "displayName": spec.display_name,
        "instanceHost": spec.host,
        "startMode": spec.start_mode,
        "baseDirectory": spec.base_directory,
        "debugLogEnabled": spec.debug_log_enabled,
        "imapServerConnectionLogEnabled": spec.imap_server_connection_log_enabled,
        "vssWriterEnabled": spec.vss_writer_enabled,
        "vssWriterExcludeIndexes": spec.vss_writer_exclude_indexes,
    }


@api("GetInstanceStatistics", INSTANCE_ID, scope=Scope.STATISTICS)
def get_instance_statistics(call: Call) -> dict[str, Any]:
    inst = _inst(call)
    grown = inst.messages_grown(call.now)
    content = inst.spec.content_file_size_mb + grown * inst.spec.bytes_per_message // MIB
    database, index = inst.spec.database_file_size_mb, inst.spec.index_file_size_mb
    return {
        "totalSizeMB": database + content + index,
        "databaseFileSizeMB": database,
        "contentFileSizeMB": content,
        "indexFileSizeMB": index,
        "numberOfMessages": sum(s.statistics_count for s in inst.spec.stores) + grown,
    }


@api("GetInstanceProcessLiveStatistics", INSTANCE_ID, scope=Scope.STATISTICS)
def get_instance_process_live_statistics(call: Call) -> dict[str, Any]:
    inst = _inst(call)
    p = inst.spec.process
    assert p is not None
    uptime = max(0.0, call.now - inst.process_started)
    first = inst.process_generation == 0  # the scenario's totals belong to the first process

    def total(base: int, per_second: float) -> int:
        return (base if first else 0) + int(per_second * uptime)

    return {
        "processUniqueID": inst.process_unique_id(),
        "timestamp": int(call.now * 1000),
        "totalProcessorMilliseconds": total(
            p.total_processor_milliseconds, p.processor_milliseconds_per_second
        ),
        "totalIOReadBytes": total(p.total_io_read_bytes, p.io_read_bytes_per_second),
        "totalIOWriteBytes": total(p.total_io_write_bytes, p.io_write_bytes_per_second),
        "totalIOOtherBytes": total(p.total_io_other_bytes, p.io_other_bytes_per_second),
        "totalRemoteProcedureCalls": total(
            p.total_remote_procedure_calls, p.remote_procedure_calls_per_second
        ),
        "totalMessagesArchived": total(
            p.total_messages_archived, inst.spec.messages_per_hour / 3600.0
        ),
        "totalMessagesChecked": total(p.total_messages_checked, p.messages_checked_per_second),
        "currentPrivateMemoryBytes": p.current_private_memory_bytes,
    }


@api("GetArchiveAdminEnabled", INSTANCE_ID, scope=Scope.INSTANCE)
def get_archive_admin_enabled(call: Call) -> bool:
    # Assumed to be the same flag as "service provider access" (spe-api-notes §3, unconfirmed).
    return _inst(call).spec.service_provider_access


@api("GetStores", INSTANCE_ID, Arg("includeSize", "bool", nullable=True), scope=Scope.STORE)
def get_stores(call: Call) -> list[dict[str, Any]]:
    inst = _inst(call)
    if inst.status == "frozen":
        return []  # a frozen/hung instance returns an empty list (Zabbix template, R5)
    include_size = call.args["includeSize"] is not False  # omitted = wrapper default (true)
    grown = inst.messages_grown(call.now)
    growing = inst.growing_store()
    rows = []
    for s in inst.spec.stores:
        extra = grown if s is growing else 0
        rows.append(
            {
                "id": s.id,
                "name": s.name,
                "requestedState": s.requested_state,
                "error": s.error,
                # With includeSize=false these are null (assumed; unconfirmed in the notes).
                "statisticsCount": s.statistics_count + extra if include_size else None,
                "statisticsSize": (
                    s.statistics_size + extra * inst.spec.bytes_per_message
                    if include_size
                    else None
                ),
                "needsUpgrade": s.needs_upgrade,
                "searchIndexesNeedRebuild": s.search_indexes_need_rebuild,
                "databasePath": s.database_path,
                "contentPath": s.content_path,
                "indexPath": s.index_path,
            }
        )
    return rows


@api("GetUsers", INSTANCE_ID, scope=Scope.ACCESS)
def get_users(call: Call) -> list[dict[str, Any]]:
    users = [
        {
            "userName": u.user_name,
            "fullName": u.full_name,
            "distinguishedName": u.distinguished_name,
            "mfaStatus": u.mfa_status,
        }
        for u in _inst(call).spec.users
    ]
    if not any(u["userName"].lower() == ARCHIVE_ADMIN for u in users):
        users.insert(
            0,
            {
                "userName": ARCHIVE_ADMIN,
                "fullName": None,
                "distinguishedName": None,
                "mfaStatus": "Disabled",
            },
        )
    return users


@api("GetComplianceConfiguration", INSTANCE_ID, scope=Scope.ACCESS)
def get_compliance_configuration(call: Call) -> dict[str, Any]:
    spec = _inst(call).spec
    return {
        "legalHoldEnabled": spec.legal_hold_enabled,
        "logSuccessfulUserActivities": list(spec.log_successful_user_activities),
    }


@api("GetCredentials", INSTANCE_ID, scope=Scope.ACCESS)
def get_credentials(call: Call) -> list[dict[str, Any]]:
    inst = _inst(call)
    # PascalCase keys and a Z on the expiry date: both as captured from SPE 25.3.1.
    return [
        {
            "ID": c.id,
            "Type": c.type,
            "Description": c.description,
            "Settings": {
                "ApplicationId": c.application_id,
                "TenantId": c.tenant_id,
                "CertificateThumbprint": c.certificate_thumbprint,
                "CertificateExpirationDate": inst.credential_expiry.get(c.id),
            },
        }
        for c in inst.spec.credentials
    ]


@api("GetTimeZones", INSTANCE_ID, scope=Scope.ACCESS)
def get_time_zones(call: Call) -> list[dict[str, str]]:
    # Result shape unknown (spe-api-notes §2.2); assumed id + displayName. Whether "UTC" is
    # listed is a scenario switch (behaviour.utc_zone_id).
    return [
        {"id": zid, "displayName": display}
        for zid, (_, display) in WINDOWS_ZONES.items()
        if zid != "UTC" or _utc_known(call)
    ]


@api("GetProfiles", INSTANCE_ID, Arg("raw", "bool"), scope=Scope.ACCESS)
def get_profiles(call: Call) -> list[dict[str, Any]]:
    if call.args["raw"] is not True:
        # "Currently only True is supported" (R1/R2); text assumed.
        raise ApiError("Only raw=true is supported.")
    # Keys as captured by a third-party tool (X): id, name, owner, type, connector, details,
    # serverSideExecution. Their values (type, connector, details) are assumed. Whether
    # "automatic" comes back as a JSON boolean or a string is a switch (behaviour).
    as_string = call.state.scenario.behaviour.automatic_flag == "string"
    return [
        {
            "id": p.id,
            "name": p.name,
            "owner": p.owner,
            "type": p.type,
            "connector": p.connector,
            "details": {"folder": p.name, "credentialID": None},
            "serverSideExecution": {
                "automatic": ("true" if p.automatic else "false") if as_string else p.automatic,
                "automaticPauseBetweenExecutions": p.pause_between_executions_minutes,
                "automaticMaintenanceWindows": [],
            },
        }
        for p in _inst(call).spec.profiles
    ]


@api(
    "GetWorkerResults",
    INSTANCE_ID,
    Arg("fromIncluding", "string"),
    Arg("toExcluding", "string"),
    Arg("timeZoneID", "string"),  # capital D: the only function spelled this way
    Arg("profileID", "number", nullable=True),
    Arg("userName", "string", nullable=True),
    scope=Scope.ACCESS,
)
def get_worker_results(call: Call) -> list[dict[str, Any]]:
    inst, state = _inst(call), call.state
    zone, t_from, t_to = _window(call, "timeZoneID")
    profile_id, user = call.args["profileID"], call.args["userName"]
    if (profile_id is not None and profile_id <= 0) or user == "":
        raise ApiError(OUT_OF_RANGE)

    def wanted(owner: str) -> bool:
        return user is None or owner.lower() == user.lower()

    profiles = [
        (slot, p)
        for slot, p in enumerate(inst.spec.profiles)
        if (profile_id is None or p.id == profile_id) and wanted(p.owner)
    ]
    temp = inst.spec.temporary_runs
    if temp is not None and (profile_id is not None or not wanted(temp.owner)):
        temp = None
    limits = state.scenario.limits
    by_start = _by_start(call)
    count = sum(
        history.count_profile_runs(p, t_from, t_to, call.now, by_start) for _, p in profiles
    )
    if temp is not None:
        count += history.count_interval_runs(
            temp.interval_minutes * 60,
            temp.offset_minutes * 60,
            temp.duration_seconds,
            t_from,
            t_to,
            call.now,
            by_start,
        )
    wide = t_to - t_from > limits.worker_results_max_window_days * 86400
    if wide and count > limits.worker_results_wide_window_min_rows:
        raise ApiError(NULLABLE_BUG)  # the real server's bug on wide windows (§1.9)
    row_limit = state.scenario.behaviour.result_row_limit
    if row_limit is not None and count > row_limit:
        # Captures: the same failure from about 5,000 rows, whatever the window's width.
        raise ApiError(NULLABLE_BUG)
    machine = inst.spec.host.upper()
    rows = []
    for slot, p in profiles:
        for r in history.profile_runs(p, slot, t_from, t_to, call.now, by_start):
            rows.append(
                {
                    "id": r.id,
                    "userName": p.owner,
                    "profileId": p.id,  # lower-case d in results, unlike the argument
                    "profileName": p.name,
                    "result": history.pick(p.results, r.k),
                    "itemsArchived": history.pick(p.items_archived, r.k),
                    "startTime": format_in_zone(r.start, zone),
                    "completeTime": format_in_zone(r.complete, zone),
                    "machineName": machine,
                }
            )
    if temp is not None:
        cas = state.scenario.server.client_access_servers
        cas_name = cas[0].name if cas else state.scenario.server.name
        for r in history.temporary_runs(temp, t_from, t_to, call.now, by_start):
            # Temporary/interactive runs carry no profileId/profileName (R3 capture).
            rows.append(
                {
                    "id": r.id,
                    "userName": temp.owner,
                    "result": history.pick(temp.results, r.k),
                    "itemsArchived": history.pick(temp.items_archived, r.k),
                    "startTime": format_in_zone(r.start, zone),
                    "completeTime": format_in_zone(r.complete, zone),
                    "machineName": cas_name.upper(),
                }
            )
    rows.sort(key=lambda row: history.unsorted_key(row["id"]))
    return rows


def _job_zone(call: Call, zone_id: str):
    # A job's own schedule zone (scenario data), not an argument: always resolvable.
    return resolve_zone_arg(zone_id, call.state.local_zone, utc_known=True)


@api("GetJobs", INSTANCE_ID, scope=Scope.ACCESS)
def get_jobs(call: Call) -> list[dict[str, Any]]:
    rows = []
    for slot, job in enumerate(_inst(call).spec.jobs):
        zone = _job_zone(call, job.time_zone_id)
        last = history.last_job_run(job, slot, zone, call.now)
        nxt = history.next_job_start(job, zone, call.now)
        zone_name = call.state.scenario.server.time_zone
        schedule: dict[str, Any] = {
            "timeZoneId": zone_name if job.time_zone_id == LOCAL_ZONE_ID else job.time_zone_id
        }
        if job.time is not None:
            schedule["time"] = job.time
        else:
            schedule["interval"] = job.interval_minutes
        rows.append(
            {
                "id": job.id,
                "name": job.name,
                "action": job.action,
                "owner": job.owner,
                "creationDateTimeUtc": job.creation,
                "lastStartDateTimeUtc": format_utc(last.start) if last else None,
                "lastCompleteDateTimeUtc": format_utc(last.complete) if last else None,
                "nextStartDateTimeUtc": format_utc(nxt) if nxt is not None else None,
                "enabled": job.enabled,
                "schedule": schedule,
            }
        )
    return rows


@api(
    "GetJobResults",
    INSTANCE_ID,
    Arg("fromIncluding", "string"),
    Arg("toExcluding", "string"),
    Arg("timeZoneId", "string"),  # lower-case d, unlike GetWorkerResults
    Arg("jobId", "number", nullable=True),
    scope=Scope.ACCESS,
)
def get_job_results(call: Call) -> list[dict[str, Any]]:
    zone, t_from, t_to = _window(call, "timeZoneId")
    job_id = call.args["jobId"]
    runs = []
    for slot, job in enumerate(_inst(call).spec.jobs):
        if job_id is not None and job.id != job_id:
            continue
        job_zone = _job_zone(call, job.time_zone_id)
        for r in history.job_runs(job, slot, job_zone, t_from, t_to, call.now, _by_start(call)):
            runs.append((r, job))
    runs.sort(key=lambda item: item[0].complete, reverse=True)  # newest first, as captured
    return [
        {
            "jobResultId": r.id,
            "jobId": job.id,
            "action": job.action,
            "startTime": format_in_zone(r.start, zone),
            "completeTime": format_in_zone(r.complete, zone),
            "result": history.pick(job.results, r.k),
        }
        for r, job in runs
    ]


# --------------------------------------------------------------------------- maintenance
# Safe stand-ins: they change nothing but run long (scenario "maintenance" steps) so that
# long-running handling can be exercised. Final result null, as in the vendor's example.


@api(
    "VerifyStore",
    INSTANCE_ID,
    Arg("id", "number"),
    Arg("includeIndexes", "bool"),
    scope=Scope.STORE,
    long_running=True,
)
def verify_store(call: Call) -> None:
    _store(call, call.args["id"])


@api(
    "VerifyStores", INSTANCE_ID, Arg("includeIndexes", "bool"), scope=Scope.STORE, long_running=True
)
def verify_stores(call: Call) -> None:
    return None


@api("CompactStore", INSTANCE_ID, Arg("id", "number"), scope=Scope.STORE, long_running=True)
def compact_store(call: Call) -> None:
    _store(call, call.args["id"])


@api("RefreshAllStoreStatistics", INSTANCE_ID, scope=Scope.STORE, long_running=True)
def refresh_all_store_statistics(call: Call) -> None:
    return None


@api("RetryOpenStores", INSTANCE_ID, scope=Scope.STORE, long_running=True)
def retry_open_stores(call: Call) -> None:
    return None
