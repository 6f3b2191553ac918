"""Scenario files: schema, strict validation, loading and generation.

A scenario describes the simulated SPE system at simulated time zero (the moment the
simulator's state is created). Keys are snake_case in YAML; the simulator translates them to
the API's own field names. Every error names the key path, e.g.
``instances[2].stores[0].requested_state: must be one of ...``.
See README.md in this package for the full reference.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .faults import ALL_FUNCTIONS, FaultError, validate_fault
from .timezones import WINDOWS_ZONES, is_known_zone_id

DEFAULT_SCENARIO = str(Path(__file__).with_name("scenarios") / "default.yml")

MAX_INSTANCES = 5000
# Run ids are k * RUN_ID_STRIDE + slot (see history.py); slots must stay below the stride.
RUN_ID_STRIDE = 64
TEMPORARY_RUN_SLOT = RUN_ID_STRIDE - 1

INSTANCE_STATUSES = ("running", "stopped", "starting", "stopping", "frozen")
START_MODES = ("automatic", "manual", "disabled")
STORE_STATES = ("current", "normal", "writeProtected", "disabled")
WORKER_RESULTS = (
    "succeeded",
    "completedWithErrors",
    "completedWithWarnings",
    "failed",
    "cancelled",
)
JOB_RESULTS = ("succeeded", "failed")
MESSAGE_TYPES = ("information", "warning", "error")
CANCEL_STATUS_CODES = ("cancelled", "failed", "succeeded")

# Switches for SPE behaviour that no capture or vendor text settles (see README.md,
# "Unverified behaviour"): each reading is a value, and the tests run against all of them.
AUTOMATIC_FLAG_SHAPES = ("boolean", "string")
UTC_ZONE_ID = ("known", "unknown")
RESULT_FILTERS = ("completion", "start")
LONG_RUNNING_SHAPES = ("vendor", "progressing")

DEFAULT_COMPLIANCE_ACTIVITIES = [
    "ComplianceChangeSettings",
    "CredentialsAdd",
    "CredentialsChange",
    "CredentialsDelete",
    "ProfileChangeUserName",
    "RecoverStoreFinish",
    "RecoverStoreStart",
    "RetentionPoliciesMessageDelete",
    "RetentionPoliciesProcessStart",
    "RetentionPoliciesUpdate",
    "SessionLogin",
    "SessionLogout",
    "SessionUnlockWithMfaCode",
    "UserAdd",
    "UserAppPasswordAdd",
    "UserAppPasswordDelete",
    "UserDelete",
    "UserDisableMFA",
    "UserInitializeMFA",
    "UserRename",
    "UserSetArchiveAdminSetEnabled",
    "UserSetFolderAccess",
    "UserSetMappings",
    "UserSetPassword",
    "UserUpdate",
]


class ScenarioError(ValueError):
    """The scenario is invalid; the message starts with the offending key path."""


# --------------------------------------------------------------------------- data model


@dataclass
class ServerRole:
    name: str
    port: int
    active: bool = True
    thumbprint: str | None = None  # None: derived (management server: the real TLS cert)
    base_directory: str | None = None


@dataclass
class ServerSpec:
    name: str = "spe.example.com"
    version: str = "25.3.1.23021"
    web_client_version: str = "25.3.1.23021"
    copyright: str = "Copyright (c) 2005-2025 MailStore Software GmbH"
    licensee_name: str = "Example Hosting Ltd."
    licensee_id: int = 12345
    operating_system: str = "Microsoft Windows Server 2022 Standard"
    processors: list[str] = field(default_factory=list)
    total_physical_memory: int = 17179869184
    time_zone: str = "W. Europe Standard Time"
    management_server: ServerRole = field(default_factory=lambda: ServerRole("", 8471))
    client_access_servers: list[ServerRole] = field(default_factory=list)


@dataclass
class StoreSpec:
    id: int
    name: str
    requested_state: str = "normal"
    error: str | None = None
    statistics_count: int = 0
    statistics_size: int = 0
    needs_upgrade: bool = False
    search_indexes_need_rebuild: bool = False
    database_path: str = ""
    content_path: str = ""
    index_path: str = ""


@dataclass
class ProfileSpec:
    id: int
    name: str
    owner: str = "admin"
    type: str = "archive"  # raw key "type"; the value set is not known (assumed)
    connector: str = "Office365"  # raw key "connector"; values assumed
    automatic: bool = True
    interval_minutes: int | None = 60  # None: never runs on its own (manual profile)
    offset_minutes: int = 0
    duration_seconds: int = 300
    results: list[str] = field(default_factory=lambda: ["succeeded"])
    items_archived: list[int] = field(default_factory=lambda: [0])
    pause_between_executions_minutes: int = 0


@dataclass
class TemporaryRunSpec:
    interval_minutes: int
    offset_minutes: int = 0
    duration_seconds: int = 60
    owner: str = "admin"
    results: list[str] = field(default_factory=lambda: ["succeeded"])
    items_archived: list[int] = field(default_factory=lambda: [0])


@dataclass
class JobSpec:
    id: int
    name: str
    action: str = "ProcessRetentionPolicies"
    owner: str = "admin"
    enabled: bool = True
    time_zone_id: str = "$Local"
    time: str | None = "03:30:00"  # daily at this wall-clock time in time_zone_id ...
    interval_minutes: int | None = None  # ... or every N minutes (exactly one of the two)
    duration_seconds: int = 5
    results: list[str] = field(default_factory=lambda: ["succeeded"])
    creation: str = "2019-03-19T10:42:40"


@dataclass
class UserSpec:
    user_name: str
    full_name: str | None = None
    distinguished_name: str | None = None
    mfa_status: str = "Disabled"


@dataclass
class CredentialSpec:
    id: int
    type: str = "Office365_Modern"
    description: str = "Microsoft 365"
    application_id: str = ""
    tenant_id: str = ""
    certificate_thumbprint: str = ""
    certificate_expiration_date: str | None = None  # absolute, "YYYY-MM-DDThh:mm:ssZ"
    certificate_expires_in_days: float | None = None  # relative to simulated time zero


@dataclass
class ProcessSpec:
    unique_id: str
    process_id: int
    total_processor_milliseconds: int = 0
    total_io_read_bytes: int = 0
    total_io_write_bytes: int = 0
    total_io_other_bytes: int = 0
    total_remote_procedure_calls: int = 0
    total_messages_archived: int = 0
    total_messages_checked: int = 0
    current_private_memory_bytes: int = 500_000_000
    # growth per second of uptime; totalMessagesArchived follows the instance's growth rate
    processor_milliseconds_per_second: float = 20.0
    io_read_bytes_per_second: float = 200_000.0
    io_write_bytes_per_second: float = 50_000.0
    io_other_bytes_per_second: float = 1_000.0
    remote_procedure_calls_per_second: float = 0.05
    messages_checked_per_second: float = 2.0


@dataclass
class InstanceSpec:
    id: str
    host: str
    alias: str = ""
    display_name: str = ""
    start_mode: str = "automatic"
    status: str = "running"
    start_stop_error: str | None = None
    service_provider_access: bool = True
    base_directory: str = ""
    debug_log_enabled: bool = False
    imap_server_connection_log_enabled: bool = False
    vss_writer_enabled: bool = True
    vss_writer_exclude_indexes: bool = False
    database_file_size_mb: int = 0
    content_file_size_mb: int = 0
    index_file_size_mb: int = 0
    messages_per_hour: float = 0.0
    bytes_per_message: int = 75_000
    legal_hold_enabled: bool = False
    log_successful_user_activities: list[str] = field(
        default_factory=lambda: list(DEFAULT_COMPLIANCE_ACTIVITIES)
    )
    stores: list[StoreSpec] = field(default_factory=list)
    profiles: list[ProfileSpec] = field(default_factory=list)
    temporary_runs: TemporaryRunSpec | None = None
    jobs: list[JobSpec] = field(default_factory=list)
    users: list[UserSpec] = field(default_factory=list)
    credentials: list[CredentialSpec] = field(default_factory=list)
    process: ProcessSpec | None = None


@dataclass
class MessageSpec:
    type: str
    text: str
    is_sub_item: bool = False


@dataclass
class FaultSpec:
    function: str
    kind: str
    params: dict[str, Any]


@dataclass
class Limits:
    # GetWorkerResults fails with "Nullable object must have a value." when the window is wider
    # than this AND it would return more than worker_results_wide_window_min_rows rows.
    worker_results_max_window_days: float = 31.0
    worker_results_wide_window_min_rows: int = 1000
    get_status_max_wait_ms: int = 30_000
    task_expiry_seconds: float = 300.0


@dataclass
class Behaviour:
    """Readings of unverified SPE behaviour; the defaults are the likeliest reading."""

    # GetProfiles(raw) serverSideExecution.automatic: a JSON boolean, or the string
    # "true"/"false" (SPE takes the string form on input; its output was never captured).
    automatic_flag: str = "boolean"
    # Whether "UTC" is a time zone id SPE knows (listed by GetTimeZones, accepted as
    # timeZoneID/timeZoneId). Windows has it; nobody was seen sending it to SPE.
    utc_zone_id: str = "known"
    # Which time GetWorkerResults/GetJobResults windows filter on.
    result_filter: str = "completion"
    # GetWorkerResults fails with "Nullable object must have a value." when a window holds
    # more rows than this (captures: about 5,000, whatever the width); null = no limit.
    result_row_limit: int | None = 5000
    # Long-running status envelopes: "vendor" = the vendor example (statusVersion jumps,
    # percentProgress 0, statusText null, new log lines); "progressing" = step n of m.
    long_running: str = "vendor"


@dataclass
class Scenario:
    server: ServerSpec
    instance_hosts: list[ServerRole]
    instances: list[InstanceSpec]
    messages: list[MessageSpec] = field(default_factory=list)
    latency: dict[str, float] = field(default_factory=dict)
    faults: list[FaultSpec] = field(default_factory=list)
    maintenance_steps: int = 3
    maintenance_step_seconds: float = 0.5
    cancel_status_code: str = "cancelled"  # real value unconfirmed (spe-api-notes §4)
    # With service provider access off, are GetInstanceStatistics and
    # GetInstanceProcessLiveStatistics refused too? The vendor's rule says so (every
    # instanceID function but the store/index ones); it was not seen (spe-api-notes §3).
    access_off_refuses_statistics: bool = True
    limits: Limits = field(default_factory=Limits)
    behaviour: Behaviour = field(default_factory=Behaviour)

    def copy(self) -> Scenario:
        """A copy whose run-time mutable parts are independent of the original.

        Only what SimState changes is copied (instance/store/host fields, messages, faults);
        profiles, jobs, users and credentials are shared, which keeps 5000-instance copies fast.
        """
        return Scenario(
            server=copy.deepcopy(self.server),
            instance_hosts=[copy.copy(h) for h in self.instance_hosts],
            instances=[
                dataclasses.replace(i, stores=[copy.copy(s) for s in i.stores])
                for i in self.instances
            ],
            messages=[copy.copy(m) for m in self.messages],
            latency=dict(self.latency),
            faults=[FaultSpec(f.function, f.kind, dict(f.params)) for f in self.faults],
            maintenance_steps=self.maintenance_steps,
            maintenance_step_seconds=self.maintenance_step_seconds,
            cancel_status_code=self.cancel_status_code,
            access_off_refuses_statistics=self.access_off_refuses_statistics,
            limits=copy.copy(self.limits),
            behaviour=copy.copy(self.behaviour),
        )


# --------------------------------------------------------------------------- validation helpers

_MISSING = object()


class _Map:
    """A mapping being validated: take keys one by one, then reject whatever is left."""

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise ScenarioError(f"{path or '<root>'}: expected a mapping, got {_show(value)}")
        self.path = path
        self._left = dict(value)

    def _sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self._left

    def take(self, key: str, kind: str, default: Any = _MISSING, **rules: Any) -> Any:
        path = self._sub(key)
        if key not in self._left:
            if default is _MISSING:
                raise ScenarioError(f"{path}: required key is missing")
            return copy.deepcopy(default) if isinstance(default, list | dict) else default
        return _check(self._left.pop(key), path, kind, **rules)

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        if key not in self._left:
            if default is _MISSING:
                raise ScenarioError(f"{self._sub(key)}: required key is missing")
            return default
        return self._left.pop(key)

    def done(self) -> None:
        if self._left:
            names = ", ".join(sorted(str(k) for k in self._left))
            raise ScenarioError(f"{self.path or '<root>'}: unknown key(s): {names}")


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def _check(value: Any, path: str, kind: str, **rules: Any) -> Any:
    nullable = kind.endswith("?")
    kind = kind.rstrip("?")
    if value is None:
        if nullable:
            return None
        raise ScenarioError(f"{path}: must not be null")
    if kind == "str":
        if not isinstance(value, str):
            raise ScenarioError(f"{path}: expected a string, got {_show(value)}")
        if rules.get("nonempty") and not value:
            raise ScenarioError(f"{path}: must not be empty")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ScenarioError(f"{path}: expected true or false, got {_show(value)}")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{path}: expected an integer, got {_show(value)}")
    elif kind == "num":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(f"{path}: expected a number, got {_show(value)}")
        value = float(value)
    elif kind == "list":
        if not isinstance(value, list):
            raise ScenarioError(f"{path}: expected a list, got {_show(value)}")
        if rules.get("nonempty") and not value:
            raise ScenarioError(f"{path}: must not be empty")
    else:  # pragma: no cover - programming error
        raise AssertionError(kind)
    if "choices" in rules and value not in rules["choices"]:
        raise ScenarioError(f"{path}: must be one of {', '.join(rules['choices'])}; got {value!r}")
    if "min" in rules and value < rules["min"]:
        raise ScenarioError(f"{path}: must be >= {rules['min']}; got {value!r}")
    if "max" in rules and value > rules["max"]:
        raise ScenarioError(f"{path}: must be <= {rules['max']}; got {value!r}")
    return value


def _str_list(value: Any, path: str, choices: tuple[str, ...] | None = None) -> list[str]:
    items = _check(value, path, "list", nonempty=True)
    return [
        _check(v, f"{path}[{i}]", "str", **({"choices": choices} if choices else {}))
        for i, v in enumerate(items)
    ]


def _int_list(value: Any, path: str) -> list[int]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ScenarioError(f"{path}: must not be empty")
    return [_check(v, f"{path}[{i}]", "int", min=0) for i, v in enumerate(items)]


def _unique(values: list[Any], path: str, what: str) -> None:
    seen: set[Any] = set()
    for v in values:
        if v in seen:
            raise ScenarioError(f"{path}: duplicate {what} {v!r}")
        seen.add(v)


def _thumbprint(m: _Map, key: str = "thumbprint") -> str | None:
    value = m.take(key, "str?", None)
    if value is not None and (len(value) != 40 or any(c not in "0123456789ABCDEF" for c in value)):
        raise ScenarioError(f"{m._sub(key)}: must be 40 upper-case hex characters")
    return value


# --------------------------------------------------------------------------- sections


def _server(value: Any) -> ServerSpec:
    m = _Map(value, "server")
    spec = ServerSpec()
    spec.name = m.take("name", "str", spec.name, nonempty=True)
    spec.version = m.take("version", "str", spec.version)
    spec.web_client_version = m.take("web_client_version", "str", spec.version)
    spec.copyright = m.take("copyright", "str", spec.copyright)
    spec.licensee_name = m.take("licensee_name", "str", spec.licensee_name)
    spec.licensee_id = m.take("licensee_id", "int", spec.licensee_id)
    spec.operating_system = m.take("operating_system", "str", spec.operating_system)
    processors = m.raw("processors", 4)
    if isinstance(processors, int) and not isinstance(processors, bool):
        _check(processors, "server.processors", "int", min=1, max=1024)
        spec.processors = ["Intel(R) Xeon(R) CPU E5-2660 v4 @ 2.00GHz"] * processors
    else:
        spec.processors = _str_list(processors, "server.processors")
    spec.total_physical_memory = m.take("total_physical_memory", "int", 17179869184, min=1)
    spec.time_zone = m.take("time_zone", "str", spec.time_zone)
    if spec.time_zone not in WINDOWS_ZONES and not is_known_zone_id(spec.time_zone):
        raise ScenarioError(f"server.time_zone: unknown time zone {spec.time_zone!r}")
    mgmt = _Map(m.raw("management_server", {}), "server.management_server")
    spec.management_server = ServerRole(
        name=mgmt.take("name", "str", spec.name, nonempty=True),
        port=mgmt.take("port", "int", 8471, min=1, max=65535),
        active=mgmt.take("active", "bool", True),
        thumbprint=_thumbprint(mgmt),
    )
    mgmt.done()
    cas_list = m.take("client_access_servers", "list", [{"name": spec.name}])
    for i, item in enumerate(cas_list):
        cm = _Map(item, f"server.client_access_servers[{i}]")
        spec.client_access_servers.append(
            ServerRole(
                name=cm.take("name", "str", nonempty=True),
                port=cm.take("port", "int", 8473, min=1, max=65535),
                active=cm.take("active", "bool", True),
                thumbprint=_thumbprint(cm),
            )
        )
        cm.done()
    m.done()
    return spec


def _hosts(value: Any) -> list[ServerRole]:
    items = _check(value, "instance_hosts", "list", nonempty=True)
    hosts = []
    for i, item in enumerate(items):
        m = _Map(item, f"instance_hosts[{i}]")
        hosts.append(
            ServerRole(
                name=m.take("name", "str", nonempty=True),
                port=m.take("port", "int", 8472, min=1, max=65535),
                active=m.take("active", "bool", True),
                thumbprint=_thumbprint(m),
                base_directory=m.take("base_directory", "str", "E:\\"),
            )
        )
        m.done()
    _unique([h.name.lower() for h in hosts], "instance_hosts", "host name")
    return hosts


def _store(value: Any, path: str, base_dir: str) -> StoreSpec:
    m = _Map(value, path)
    s = StoreSpec(id=m.take("id", "int", min=1), name=m.take("name", "str", nonempty=True))
    s.requested_state = m.take("requested_state", "str", "normal", choices=STORE_STATES)
    s.error = m.take("error", "str?", None)
    s.statistics_count = m.take("statistics_count", "int", 0, min=0)
    s.statistics_size = m.take("statistics_size", "int", 0, min=0)
    s.needs_upgrade = m.take("needs_upgrade", "bool", False)
    s.search_indexes_need_rebuild = m.take("search_indexes_need_rebuild", "bool", False)
    default_db = f"{base_dir}\\Data\\{s.name}"
    s.database_path = m.take("database_path", "str", default_db)
    s.content_path = m.take("content_path", "str", s.database_path + "\\Content")
    s.index_path = m.take("index_path", "str", s.database_path + "\\Index")
    m.done()
    return s


def _results(m: _Map, choices: tuple[str, ...]) -> list[str]:
    return _str_list(m.raw("results", ["succeeded"]), m._sub("results"), choices)


def _profile(value: Any, path: str) -> ProfileSpec:
    m = _Map(value, path)
    p = ProfileSpec(id=m.take("id", "int", min=1), name=m.take("name", "str", nonempty=True))
    p.owner = m.take("owner", "str", "admin", nonempty=True)
    p.type = m.take("type", "str", p.type)
    p.connector = m.take("connector", "str", p.connector)
    p.automatic = m.take("automatic", "bool", True)
    p.interval_minutes = m.take("interval_minutes", "int?", 60, min=1, max=525600)
    p.offset_minutes = m.take("offset_minutes", "int", 0, min=0)
    p.duration_seconds = m.take("duration_seconds", "int", 300, min=0)
    p.results = _results(m, WORKER_RESULTS)
    p.items_archived = _int_list(m.raw("items_archived", 0), m._sub("items_archived"))
    p.pause_between_executions_minutes = m.take("pause_between_executions_minutes", "int", 0, min=0)
    m.done()
    return p


def _temporary_runs(value: Any, path: str) -> TemporaryRunSpec:
    m = _Map(value, path)
    t = TemporaryRunSpec(interval_minutes=m.take("interval_minutes", "int", min=1, max=525600))
    t.offset_minutes = m.take("offset_minutes", "int", 0, min=0)
    t.duration_seconds = m.take("duration_seconds", "int", 60, min=0)
    t.owner = m.take("owner", "str", "admin", nonempty=True)
    t.results = _results(m, WORKER_RESULTS)
    t.items_archived = _int_list(m.raw("items_archived", 0), m._sub("items_archived"))
    m.done()
    return t


def _job(value: Any, path: str) -> JobSpec:
    m = _Map(value, path)
    j = JobSpec(id=m.take("id", "int", min=1), name=m.take("name", "str", nonempty=True))
    j.action = m.take("action", "str", j.action, nonempty=True)
    j.owner = m.take("owner", "str", "admin", nonempty=True)
    j.enabled = m.take("enabled", "bool", True)
    j.time_zone_id = m.take("time_zone_id", "str", "$Local")
    if j.time_zone_id != "$Local" and j.time_zone_id not in WINDOWS_ZONES:
        raise ScenarioError(f"{path}.time_zone_id: unknown Windows time zone id {j.time_zone_id!r}")
    has_interval = m.has("interval_minutes")
    j.interval_minutes = m.take("interval_minutes", "int?", None, min=1, max=10080)
    j.time = m.take("time", "str?", None if has_interval else "03:30:00")
    if (j.time is None) == (j.interval_minutes is None):
        raise ScenarioError(f"{path}: give exactly one of time or interval_minutes")
    if j.time is not None:
        parts = j.time.split(":")
        ok = len(parts) == 3 and all(p.isdigit() and len(p) == 2 for p in parts)
        if not ok or int(parts[0]) > 23 or int(parts[1]) > 59 or int(parts[2]) > 59:
            raise ScenarioError(f"{path}.time: expected hh:mm:ss, got {j.time!r}")
    j.duration_seconds = m.take("duration_seconds", "int", 5, min=0)
    j.results = _results(m, JOB_RESULTS)
    j.creation = m.take("creation", "str", j.creation)
    m.done()
    return j


def _user(value: Any, path: str) -> UserSpec:
    m = _Map(value, path)
    u = UserSpec(user_name=m.take("user_name", "str", nonempty=True))
    u.full_name = m.take("full_name", "str?", None)
    u.distinguished_name = m.take("distinguished_name", "str?", None)
    u.mfa_status = m.take("mfa_status", "str", "Disabled")
    m.done()
    return u


def _credential(value: Any, path: str) -> CredentialSpec:
    m = _Map(value, path)
    c = CredentialSpec(id=m.take("id", "int", min=1))
    c.type = m.take("type", "str", c.type)
    c.description = m.take("description", "str", c.description)
    c.application_id = m.take("application_id", "str", str(uuid.UUID(int=c.id * 7919)))
    c.tenant_id = m.take("tenant_id", "str", str(uuid.UUID(int=c.id * 104729)))
    c.certificate_thumbprint = m.take("certificate_thumbprint", "str", f"{c.id:040X}")
    c.certificate_expiration_date = m.take("certificate_expiration_date", "str?", None)
    c.certificate_expires_in_days = m.take("certificate_expires_in_days", "num?", None)
    if c.certificate_expiration_date is not None:
        if c.certificate_expires_in_days is not None:
            raise ScenarioError(
                f"{path}: give certificate_expiration_date or certificate_expires_in_days, not both"
            )
        text = c.certificate_expiration_date
        if len(text) != 20 or text[10] != "T" or not text.endswith("Z"):
            raise ScenarioError(
                f"{path}.certificate_expiration_date: expected YYYY-MM-DDThh:mm:ssZ, got {text!r}"
            )
    m.done()
    return c


def _process(value: Any, path: str, instance_id: str) -> ProcessSpec:
    m = _Map(value, path)
    p = ProcessSpec(
        unique_id=m.take("unique_id", "str", str(uuid.uuid5(uuid.NAMESPACE_URL, instance_id))),
        process_id=m.take("process_id", "int", 1000 + (sum(map(ord, instance_id)) * 4) % 60000),
    )
    for name in (
        "total_processor_milliseconds",
        "total_io_read_bytes",
        "total_io_write_bytes",
        "total_io_other_bytes",
        "total_remote_procedure_calls",
        "total_messages_archived",
        "total_messages_checked",
        "current_private_memory_bytes",
    ):
        setattr(p, name, m.take(name, "int", getattr(p, name), min=0))
    for name in (
        "processor_milliseconds_per_second",
        "io_read_bytes_per_second",
        "io_write_bytes_per_second",
        "io_other_bytes_per_second",
        "remote_procedure_calls_per_second",
        "messages_checked_per_second",
    ):
        setattr(p, name, m.take(name, "num", getattr(p, name), min=0))
    m.done()
    return p


def parse_instance(value: Any, path: str, host_names: set[str]) -> InstanceSpec:
    """Validate one instance entry (also used by SimState.add_instance)."""
    m = _Map(value, path)
    iid = m.take("id", "str", nonempty=True)
    inst = InstanceSpec(id=iid, host=m.take("host", "str", nonempty=True))
    if inst.host.lower() not in host_names:
        raise ScenarioError(f"{path}.host: no instance host named {inst.host!r}")
    inst.alias = m.take("alias", "str", iid[:3])
    inst.display_name = m.take("display_name", "str", iid)
    inst.start_mode = m.take("start_mode", "str", "automatic", choices=START_MODES)
    inst.status = m.take("status", "str", "running", choices=INSTANCE_STATUSES)
    inst.start_stop_error = m.take("start_stop_error", "str?", None)
    inst.service_provider_access = m.take("service_provider_access", "bool", True)
    inst.base_directory = m.take("base_directory", "str", f"E:\\{iid.upper()}")
    for flag in (
        "debug_log_enabled",
        "imap_server_connection_log_enabled",
        "vss_writer_enabled",
        "vss_writer_exclude_indexes",
        "legal_hold_enabled",
    ):
        setattr(inst, flag, m.take(flag, "bool", getattr(inst, flag)))
    for size in ("database_file_size_mb", "content_file_size_mb", "index_file_size_mb"):
        setattr(inst, size, m.take(size, "int", 0, min=0))
    inst.messages_per_hour = m.take("messages_per_hour", "num", 0.0, min=0)
    inst.bytes_per_message = m.take("bytes_per_message", "int", 75_000, min=0)
    if m.has("log_successful_user_activities"):
        inst.log_successful_user_activities = _str_list(
            m.raw("log_successful_user_activities"), f"{path}.log_successful_user_activities"
        )
    stores = m.take("stores", "list", [])
    inst.stores = [
        _store(s, f"{path}.stores[{i}]", inst.base_directory) for i, s in enumerate(stores)
    ]
    _unique([s.id for s in inst.stores], f"{path}.stores", "store id")
    profiles = m.take("profiles", "list", [])
    if len(profiles) >= TEMPORARY_RUN_SLOT:
        raise ScenarioError(f"{path}.profiles: at most {TEMPORARY_RUN_SLOT - 1} profiles")
    inst.profiles = [_profile(p, f"{path}.profiles[{i}]") for i, p in enumerate(profiles)]
    _unique([p.id for p in inst.profiles], f"{path}.profiles", "profile id")
    temp = m.raw("temporary_runs", None)
    inst.temporary_runs = None if temp is None else _temporary_runs(temp, f"{path}.temporary_runs")
    jobs = m.take("jobs", "list", [])
    if len(jobs) >= RUN_ID_STRIDE:
        raise ScenarioError(f"{path}.jobs: at most {RUN_ID_STRIDE - 1} jobs")
    inst.jobs = [_job(j, f"{path}.jobs[{i}]") for i, j in enumerate(jobs)]
    _unique([j.id for j in inst.jobs], f"{path}.jobs", "job id")
    users = m.take("users", "list", [])
    inst.users = [_user(u, f"{path}.users[{i}]") for i, u in enumerate(users)]
    _unique([u.user_name.lower() for u in inst.users], f"{path}.users", "user name")
    creds = m.take("credentials", "list", [])
    inst.credentials = [_credential(c, f"{path}.credentials[{i}]") for i, c in enumerate(creds)]
    _unique([c.id for c in inst.credentials], f"{path}.credentials", "credential id")
    inst.process = _process(m.raw("process", {}), f"{path}.process", iid)
    m.done()
    return inst


def _messages(value: Any) -> list[MessageSpec]:
    out = []
    for i, item in enumerate(_check(value, "messages", "list")):
        m = _Map(item, f"messages[{i}]")
        out.append(
            MessageSpec(
                type=m.take("type", "str", choices=MESSAGE_TYPES),
                text=m.take("text", "str", nonempty=True),
                is_sub_item=m.take("is_sub_item", "bool", False),
            )
        )
        m.done()
    return out


def _latency(value: Any) -> dict[str, float]:
    m = _Map(value, "latency")
    out = {}
    for key in list(value):
        if not isinstance(key, str):
            raise ScenarioError(f"latency: keys must be function names, got {key!r}")
        out[key] = m.take(key, "num", min=0)
    m.done()
    return out


def _faults(value: Any) -> list[FaultSpec]:
    out = []
    for i, item in enumerate(_check(value, "faults", "list")):
        path = f"faults[{i}]"
        if not isinstance(item, dict):
            raise ScenarioError(f"{path}: expected a mapping, got {_show(item)}")
        params = dict(item)
        function = _check(params.pop("function", None), f"{path}.function", "str", nonempty=True)
        kind = _check(params.pop("kind", None), f"{path}.kind", "str")
        try:
            checked = validate_fault(kind, params, path)
        except FaultError as exc:
            raise ScenarioError(str(exc)) from None
        out.append(FaultSpec(function=function, kind=kind, params=checked))
    return out


def _limits(value: Any) -> Limits:
    m = _Map(value, "limits")
    lim = Limits()
    lim.worker_results_max_window_days = m.take("worker_results_max_window_days", "num", 31, min=0)
    lim.worker_results_wide_window_min_rows = m.take(
        "worker_results_wide_window_min_rows", "int", 1000, min=0
    )
    lim.get_status_max_wait_ms = m.take("get_status_max_wait_ms", "int", 30_000, min=0)
    lim.task_expiry_seconds = m.take("task_expiry_seconds", "num", 300, min=0)
    m.done()
    return lim


def _behaviour(value: Any) -> Behaviour:
    m = _Map(value, "behaviour")
    b = Behaviour()
    b.automatic_flag = m.take("automatic_flag", "str", b.automatic_flag,
                              choices=AUTOMATIC_FLAG_SHAPES)
    b.utc_zone_id = m.take("utc_zone_id", "str", b.utc_zone_id, choices=UTC_ZONE_ID)
    b.result_filter = m.take("result_filter", "str", b.result_filter, choices=RESULT_FILTERS)
    b.result_row_limit = m.take("result_row_limit", "int?", b.result_row_limit, min=1)
    b.long_running = m.take("long_running", "str", b.long_running, choices=LONG_RUNNING_SHAPES)
    m.done()
    return b


# Named variants: one per reading that differs from the default, applied on top of a
# scenario. The integration tests run the exporter against every one of them.
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "automatic-as-string": {"automatic_flag": "string"},
    "utc-unknown": {"utc_zone_id": "unknown"},
    "filter-on-start": {"result_filter": "start"},
    "row-limit-20": {"result_row_limit": 20},
    "progressing-long-running": {"long_running": "progressing"},
    # A scenario-level switch (issue 11): statistics and process calls answer with access off.
    "access-off-allows-statistics": {"access_off_refuses_statistics": False},
}


def apply_variant(scenario: Scenario, variant: str) -> Scenario:
    """``scenario`` with the named variant's behaviour switches set (in place)."""
    if variant not in VARIANTS:
        raise ScenarioError(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    for key, value in VARIANTS[variant].items():
        setattr(scenario.behaviour if hasattr(scenario.behaviour, key) else scenario, key, value)
    return scenario


def parse_scenario(data: Any) -> Scenario:
    """Validate an already-parsed scenario dict and build the data model."""
    root = _Map(data, "")
    server = _server(root.raw("server", {}))
    hosts = _hosts(root.raw("instance_hosts"))
    host_names = {h.name.lower() for h in hosts}
    entries = list(root.take("instances", "list", []))
    generated = root.raw("generated_instances", None)
    if generated is not None:
        gm = _Map(generated, "generated_instances")
        count = gm.take("count", "int", min=1, max=MAX_INSTANCES)
        seed = gm.take("seed", "int", 1)
        prefix = gm.take("id_prefix", "str", "tenant", nonempty=True)
        gm.done()
        entries += generate_instances(count, seed, [h.name for h in hosts], prefix)
    if not 1 <= len(entries) <= MAX_INSTANCES:
        raise ScenarioError(f"instances: need 1 to {MAX_INSTANCES} instances, got {len(entries)}")
    instances = [parse_instance(e, f"instances[{i}]", host_names) for i, e in enumerate(entries)]
    _unique([i.id.lower() for i in instances], "instances", "instance id")
    scenario = Scenario(server=server, instance_hosts=hosts, instances=instances)
    scenario.messages = _messages(root.raw("messages", []))
    scenario.latency = _latency(root.raw("latency", {}))
    scenario.faults = _faults(root.raw("faults", []))
    mm = _Map(root.raw("maintenance", {}), "maintenance")
    scenario.maintenance_steps = mm.take("steps", "int", 3, min=1)
    scenario.maintenance_step_seconds = mm.take("step_seconds", "num", 0.5, min=0)
    mm.done()
    scenario.access_off_refuses_statistics = root.take(
        "access_off_refuses_statistics", "bool", True
    )
    scenario.cancel_status_code = root.take(
        "cancel_status_code", "str", "cancelled", choices=CANCEL_STATUS_CODES
    )
    scenario.limits = _limits(root.raw("limits", {}))
    scenario.behaviour = _behaviour(root.raw("behaviour", {}))
    root.done()
    for f in scenario.faults:
        if f.function != ALL_FUNCTIONS and not f.function.strip():
            raise ScenarioError("faults: empty function name")
    return scenario


def load_scenario(source: str | Path | dict[str, Any] | Scenario) -> Scenario:
    """Load a scenario from a YAML file path or an already-parsed dict, strictly validated."""
    if isinstance(source, Scenario):
        return source.copy()
    if not isinstance(source, str | Path):
        return parse_scenario(source)  # a parsed dict; validation never mutates its input
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario file {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: invalid YAML: {exc}") from None
    try:
        return parse_scenario(data)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None


# --------------------------------------------------------------------------- generation

_RESULT_MIXES = [
    ["succeeded"],
    ["succeeded", "succeeded", "completedWithErrors"],
    ["completedWithErrors"],
    ["succeeded", "failed"],
    ["failed"],
]


def generate_instances(
    count: int, seed: int, hosts: list[str], prefix: str = "tenant"
) -> list[dict[str, Any]]:
    """Deterministic instance entries (YAML form) for large scenarios."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    width = max(4, len(str(count)))
    for n in range(count):
        iid = f"{prefix}{n + 1:0{width}d}"
        store_count = rng.randint(1, 4)
        stores = []
        for s in range(store_count):
            messages = rng.randint(10_000, 3_000_000)
            stores.append(
                {
                    "id": s + 1,
                    "name": f"{2020 + s}",
                    "requested_state": "current" if s == store_count - 1 else "normal",
                    "statistics_count": messages,
                    "statistics_size": messages * rng.randint(40_000, 120_000),
                    "needs_upgrade": rng.random() < 0.02,
                    "search_indexes_need_rebuild": rng.random() < 0.02,
                }
            )
        profiles = [
            {
                "id": p + 1,
                "name": f"Mailboxes {p + 1}",
                "interval_minutes": rng.choice([15, 30, 60, 120, 240]),
                "offset_minutes": rng.randint(0, 14),
                "duration_seconds": rng.randint(30, 600),
                "results": rng.choice(_RESULT_MIXES),
                "items_archived": [rng.randint(0, 50) for _ in range(3)],
            }
            for p in range(rng.randint(0, 3))
        ]
        total = sum(s["statistics_count"] for s in stores)
        stopped = rng.random() < 0.01
        out.append(
            {
                "id": iid,
                "host": hosts[n % len(hosts)],
                "status": "stopped" if stopped else "running",
                "start_stop_error": "The instance process exited unexpectedly."
                if stopped
                else None,
                "service_provider_access": rng.random() > 0.05,
                "database_file_size_mb": max(1, total // 800),
                "content_file_size_mb": max(1, total * 70_000 // 1_048_576),
                "index_file_size_mb": max(1, total // 600),
                "messages_per_hour": rng.choice([0, 5, 20, 60, 200]),
                "stores": stores,
                "profiles": profiles,
                "jobs": [{"id": 1, "name": "Process Retention Policies", "time": "03:30:00"}],
                "users": [
                    {"user_name": f"user{u:03d}", "full_name": f"User {u}"}
                    for u in range(rng.randint(1, 40))
                ],
                "credentials": [{"id": 1, "certificate_expires_in_days": rng.randint(-30, 700)}],
            }
        )
    return out


def generate_scenario(instances: int = 5000, seed: int = 1, hosts: int | None = None) -> dict:
    """A large scenario as a plain dict (feed it to load_scenario), for benchmarks."""
    if not 1 <= instances <= MAX_INSTANCES:
        raise ScenarioError(f"instances: need 1 to {MAX_INSTANCES}, got {instances}")
    host_count = hosts or max(2, instances // 500)
    host_names = [f"ih{h + 1:02d}" for h in range(host_count)]
    return {
        "server": {"name": "spe.bench.example", "time_zone": "UTC"},
        "instance_hosts": [{"name": n} for n in host_names],
        "instances": generate_instances(instances, seed, host_names),
        "messages": [{"type": "information", "text": "Generated benchmark scenario."}],
    }
