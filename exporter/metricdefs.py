"""Every metric family the exporter exposes: name, type, help text and label names.

This module is the single source of truth for the public metric contract
(``metrics-contract.md``). Collectors build their samples against it, and the
exposition renders families in the order of ``FAMILIES``.

``FamilyDef.name`` is the OpenMetrics family name: a counter family has no ``_total``
(family ``mailstore_spe_api_requests``, sample ``mailstore_spe_api_requests_total``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MetricType = Literal["gauge", "counter", "histogram"]

# Buckets (seconds) of the API call and long-running operation duration histograms.
# Plain calls take 0.05-5 s; long-running ones are polled for up to the async deadline
# (600 s by default), so the buckets stretch that far.
DURATION_BUCKETS: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)

# Appended to help texts of series that come from a periodic poll, not from the scrape.
_CACHED = "Refreshed every collector interval."


@dataclass(frozen=True, slots=True)
class FamilyDef:
    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...]

    def sample_name(self) -> str:
        """The sample name of a gauge or counter (histograms have several)."""
        if self.type == "counter":
            return f"{self.name}_total"
        if self.type == "gauge":
            return self.name
        raise ValueError(f"{self.name} is a histogram; it has _bucket/_sum/_count samples")


_T = ("target",)
_TC = ("target", "collector")
_TF = ("target", "function")
_TI = ("target", "instance_id")
_STORE = ("target", "instance_id", "store_id", "store_name")
_PROFILE = ("target", "instance_id", "profile_id", "profile_name")
_JOB = ("target", "instance_id", "job_id", "job_name", "action")

_DEFS: tuple[FamilyDef, ...] = (
    # --- Health of the exporter and its polls (scheduler, telemetry, cli) ---
    FamilyDef(
        "mailstore_spe_up", "gauge",
        "1 if the last polls of the management server (GetServiceStatus and "
        "GetEnvironmentInfo, whichever are enabled) succeeded, else 0.", _T,
    ),
    FamilyDef(
        "mailstore_spe_collector_success", "gauge",
        "1 if the collector's last run succeeded completely, else 0.", _TC,
    ),
    FamilyDef(
        "mailstore_spe_collector_duration_seconds", "gauge",
        "Wall time of the collector's last run, in seconds.", _TC,
    ),
    FamilyDef(
        "mailstore_spe_collector_last_success_timestamp_seconds", "gauge",
        "Unix time of the collector's last fully successful run, in seconds.", _TC,
    ),
    FamilyDef(
        "mailstore_spe_collector_interval_seconds", "gauge",
        "Configured polling interval of the collector, in seconds.", _TC,
    ),
    FamilyDef(
        "mailstore_spe_collector_runs_skipped", "counter",
        "Collector runs skipped because the previous run was still going.", _TC,
    ),
    FamilyDef(
        "mailstore_spe_instance_collect_success", "gauge",
        "1 if the per-instance collector's last run succeeded for this instance, else 0. "
        "Only for running instances, and not for instances whose calls SPE refuses because "
        "service provider access is off (see "
        "mailstore_spe_instance_service_provider_access_enabled).",
        ("target", "instance_id", "collector"),
    ),
    FamilyDef(
        "mailstore_spe_api_requests", "counter",
        "Management API calls made (get-status polls excluded).", _TF,
    ),
    FamilyDef(
        "mailstore_spe_api_request_failures", "counter",
        "Failed Management API calls by reason (timeout, connection, tls, http_401, "
        "http_403, http_404, http_4xx, http_5xx, invalid_response, api_error, async_timeout).",
        ("target", "function", "reason"),
    ),
    FamilyDef(
        "mailstore_spe_api_request_duration_seconds", "histogram",
        "End-to-end duration of a Management API call in seconds, polling of "
        "long-running calls included.", _TF,
    ),
    FamilyDef(
        "mailstore_spe_exporter_build_info", "gauge",
        "Version of the exporter, its git commit (revision, \"unknown\" if not known at "
        "build time) and the Python version running it; always 1.",
        ("version", "revision", "python_version"),
    ),
    FamilyDef(
        "mailstore_spe_config_last_reload_successful", "gauge",
        "1 if the last reload of the config file (SIGHUP or POST /-/reload) succeeded, else "
        "0 (the previous config stays in use).", (),
    ),
    FamilyDef(
        "mailstore_spe_config_last_reload_success_timestamp_seconds", "gauge",
        "Unix time of the last successful config load (start or reload), in seconds.", (),
    ),
    # --- Long-running operations (token + get-status polling; telemetry) ---
    FamilyDef(
        "mailstore_spe_async_operations_in_progress", "gauge",
        "Long-running calls currently being polled with get-status.", _TF,
    ),
    FamilyDef(
        "mailstore_spe_async_operations", "counter",
        "Finished long-running calls by result (succeeded, failed, cancelled, timeout).",
        ("target", "function", "result"),
    ),
    FamilyDef(
        "mailstore_spe_async_operation_duration_seconds", "histogram",
        "Duration of long-running calls from the first response to the final status, "
        "in seconds.", _TF,
    ),
    FamilyDef(
        "mailstore_spe_async_operation_last_duration_seconds", "gauge",
        "Duration of the last finished long-running call, in seconds.", _TF,
    ),
    FamilyDef(
        "mailstore_spe_async_operation_last_success_timestamp_seconds", "gauge",
        "Unix time of the last successful long-running call, in seconds.", _TF,
    ),
    FamilyDef(
        "mailstore_spe_async_operation_progress_ratio", "gauge",
        "Progress (percentProgress / 100) of a long-running call, present only while it "
        "runs and only once SPE reported progress above 0. SPE's own example reports 0 for "
        "a whole run: then this is absent, and mailstore_spe_async_operations_in_progress "
        "shows the call is running.", _TF,
    ),
    FamilyDef(
        "mailstore_spe_maintenance_runs_skipped", "counter",
        "Scheduled maintenance runs skipped because the previous run of the same operation "
        "was still going.", _TF,
    ),
    # --- Management server and roles (GetEnvironmentInfo, GetServiceStatus) ---
    FamilyDef(
        "mailstore_spe_info", "gauge",
        f"SPE version and licensee from GetEnvironmentInfo; always 1. {_CACHED}",
        ("target", "version", "web_client_version", "server_name", "licensee_name",
         "licensee_id"),
    ),
    FamilyDef(
        "mailstore_spe_server_active", "gauge",
        f"1 if the SPE role (management server, client access server, instance host) is "
        f"active, else 0 (GetServiceStatus serverInfos). {_CACHED}",
        ("target", "server_name", "server_type", "port"),
    ),
    FamilyDef(
        "mailstore_spe_server_memory_bytes", "gauge",
        f"Physical memory of the server running the role, in bytes (where reported). "
        f"{_CACHED}",
        ("target", "server_name", "server_type"),
    ),
    FamilyDef(
        "mailstore_spe_server_processors", "gauge",
        f"Logical processors of the server running the role (where reported). {_CACHED}",
        ("target", "server_name", "server_type"),
    ),
    FamilyDef(
        "mailstore_spe_server_certificate_info", "gauge",
        f"TLS certificate thumbprint of the role; always 1, a new thumbprint is a new "
        f"series. {_CACHED}",
        ("target", "server_name", "server_type", "thumbprint"),
    ),
    FamilyDef(
        "mailstore_spe_instance_host_instances", "gauge",
        f"Instances on the instance host. {_CACHED}", ("target", "server_name"),
    ),
    FamilyDef(
        "mailstore_spe_instance_host_running_instances", "gauge",
        f"Running instances on the instance host. {_CACHED}", ("target", "server_name"),
    ),
    FamilyDef(
        "mailstore_spe_service_messages", "gauge",
        f"Messages on the Management Console dashboard by SPE's message type (information, "
        f"warning, error; other types as reported). The label is message_severity, not "
        f"severity, which alert routing owns. {_CACHED}",
        ("target", "message_severity"),
    ),
    FamilyDef(
        "mailstore_spe_service_messages_by_category", "gauge",
        f"Dashboard messages by a category derived from their text (update, license, "
        f"search_index, smtp, certificate, other); sub-items are not counted. {_CACHED}",
        ("target", "category"),
    ),
    # --- Instances ---
    FamilyDef(
        "mailstore_spe_instance_info", "gauge",
        f"Instance properties from GetInstances; always 1. {_CACHED}",
        ("target", "instance_id", "alias", "display_name", "instance_host", "start_mode"),
    ),
    FamilyDef(
        "mailstore_spe_instance_status", "gauge",
        f"Instance status as a state set (running, stopped, starting, stopping, frozen; "
        f"other values as reported): 1 for the current status. {_CACHED}",
        ("target", "instance_id", "status"),
    ),
    FamilyDef(
        "mailstore_spe_instance_start_stop_error", "gauge",
        f"1 if the instance reports a start/stop error, else 0. {_CACHED}", _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_archive_size_bytes", "gauge",
        f"Total archive size of the instance in bytes (totalSizeMB). {_CACHED}", _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_database_size_bytes", "gauge",
        f"Size of the instance's archive databases in bytes (databaseFileSizeMB). {_CACHED}",
        _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_content_size_bytes", "gauge",
        f"Size of the instance's content files in bytes (contentFileSizeMB). {_CACHED}", _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_index_size_bytes", "gauge",
        f"Size of the instance's search indexes in bytes (indexFileSizeMB). {_CACHED}", _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_messages", "gauge",
        f"Messages archived in the instance. {_CACHED}", _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_process_restarts", "counter",
        f"Instance process restarts seen by the exporter (processUniqueID changed between "
        f"two polls); starts at 0 when the exporter first sees the instance. {_CACHED}", _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_process_first_seen_timestamp_seconds", "gauge",
        f"When the exporter first saw the current instance process (its processUniqueID); "
        f"not the process start time, which SPE does not report. {_CACHED}", _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_process_cpu_seconds", "counter",
        f"CPU time of the instance process in seconds; resets when the process restarts. "
        f"{_CACHED}", _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_process_io_read_bytes", "counter",
        f"Bytes read by the instance process; resets when the process restarts. {_CACHED}",
        _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_process_io_write_bytes", "counter",
        f"Bytes written by the instance process; resets when the process restarts. "
        f"{_CACHED}", _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_process_io_other_bytes", "counter",
        f"Bytes of other I/O (neither read nor write) of the instance process; resets when "
        f"the process restarts. {_CACHED}", _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_process_messages_archived", "counter",
        f"Messages archived by the instance process; resets when the process restarts. "
        f"{_CACHED}", _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_process_messages_checked", "counter",
        f"Messages checked by the instance process; resets when the process restarts. "
        f"{_CACHED}", _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_process_private_memory_bytes", "gauge",
        f"Private memory of the instance process in bytes. {_CACHED}", _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_users", "gauge",
        f"Users of the instance, excluding $archiveadmin. {_CACHED}", _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_users_by_mfa_status", "gauge",
        f"Users of the instance (excluding $archiveadmin) by mfaStatus as SPE reports it "
        f"(Disabled and Enabled always present, other values as reported). {_CACHED}",
        ("target", "instance_id", "mfa_status"),
    ),
    FamilyDef(
        "mailstore_spe_instance_legal_hold_enabled", "gauge",
        f"1 if legal hold is enabled for the instance, else 0. {_CACHED}", _TI,
    ),
    FamilyDef(
        "mailstore_spe_instance_service_provider_access_enabled", "gauge",
        "1 if the tenant allows service provider access to the instance, else 0 "
        "(GetArchiveAdminEnabled; also 0 while SPE refuses a collector's call for that "
        "reason). With 0, the refused collectors skip the instance: no failure, no "
        f"instance_collect_success series for them. {_CACHED}", _TI,
    ),
    # --- Archive stores (GetStores) ---
    FamilyDef(
        "mailstore_spe_store_size_bytes", "gauge",
        f"Size of the archive store in bytes (statisticsSize). {_CACHED}", _STORE,
    ),
    FamilyDef(
        "mailstore_spe_store_messages", "gauge",
        f"Messages in the archive store (statisticsCount). {_CACHED}", _STORE,
    ),
    FamilyDef(
        "mailstore_spe_store_state", "gauge",
        f"Requested state of the archive store as a state set (current, normal, "
        f"writeProtected, disabled; other values as reported). {_CACHED}",
        (*_STORE, "state"),
    ),
    FamilyDef(
        "mailstore_spe_store_error", "gauge",
        f"1 if the archive store reports an error, else 0. {_CACHED}", _STORE,
    ),
    FamilyDef(
        "mailstore_spe_store_needs_upgrade", "gauge",
        f"1 if the archive store's database needs an upgrade, else 0. {_CACHED}", _STORE,
    ),
    FamilyDef(
        "mailstore_spe_store_search_indexes_need_rebuild", "gauge",
        f"1 if search indexes of the archive store must be rebuilt, else 0. {_CACHED}",
        _STORE,
    ),
    # --- Archiving profiles (GetProfiles, GetWorkerResults) ---
    FamilyDef(
        "mailstore_spe_profile_runs", "counter",
        f"Archiving profile runs by result (succeeded, completedWithErrors, failed, "
        f"cancelled; other values as reported), each run counted once since the exporter "
        f"started. Temporary runs have profile_id=\"\". {_CACHED}",
        (*_PROFILE, "result"),
    ),
    FamilyDef(
        "mailstore_spe_profile_items_archived", "counter",
        f"Items archived by runs of the profile since the exporter started. {_CACHED}",
        _PROFILE,
    ),
    FamilyDef(
        "mailstore_spe_profile_last_run_timestamp_seconds", "gauge",
        f"Unix time the newest seen run of the profile completed, in seconds. {_CACHED}",
        _PROFILE,
    ),
    FamilyDef(
        "mailstore_spe_profile_last_success_timestamp_seconds", "gauge",
        f"Unix time the newest seen successful run of the profile completed, in seconds. "
        f"{_CACHED}", _PROFILE,
    ),
    FamilyDef(
        "mailstore_spe_profile_last_run_duration_seconds", "gauge",
        f"Duration of the newest seen run of the profile, in seconds. {_CACHED}", _PROFILE,
    ),
    FamilyDef(
        "mailstore_spe_profile_last_run_result", "gauge",
        f"Result of the newest seen run of the profile as a state set. {_CACHED}",
        (*_PROFILE, "result"),
    ),
    FamilyDef(
        "mailstore_spe_profile_automatic", "gauge",
        f"1 if the profile runs automatically on the server, else 0. {_CACHED}", _PROFILE,
    ),
    # --- Jobs (GetJobs, GetJobResults) ---
    FamilyDef(
        "mailstore_spe_job_enabled", "gauge",
        f"1 if the job is enabled, else 0. {_CACHED}", _JOB,
    ),
    FamilyDef(
        "mailstore_spe_job_last_run_timestamp_seconds", "gauge",
        f"Unix time the job last completed, in seconds. {_CACHED}", _JOB,
    ),
    FamilyDef(
        "mailstore_spe_job_next_run_timestamp_seconds", "gauge",
        f"Unix time of the job's next scheduled start, in seconds. {_CACHED}", _JOB,
    ),
    FamilyDef(
        "mailstore_spe_job_runs", "counter",
        f"Job runs by result, each job result counted once since the exporter started. "
        f"{_CACHED}",
        ("target", "instance_id", "job_id", "action", "result"),
    ),
    # --- Credentials (GetCredentials) ---
    FamilyDef(
        "mailstore_spe_credential_certificate_expiry_timestamp_seconds", "gauge",
        f"Unix time the credential's certificate expires, in seconds. {_CACHED}",
        ("target", "instance_id", "credential_id", "credential_type"),
    ),
)

# The exporter's own process and Python runtime, gathered by prometheus_client's collectors
# (exporter/runtime.py) under their usual names; help texts are theirs (a test keeps them
# equal). process_* exist on Linux only (read from /proc).
_RUNTIME: tuple[FamilyDef, ...] = (
    FamilyDef("process_cpu_seconds", "counter",
              "Total user and system CPU time spent in seconds.", ()),
    FamilyDef("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", ()),
    FamilyDef("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", ()),
    FamilyDef("process_start_time_seconds", "gauge",
              "Start time of the process since unix epoch in seconds.", ()),
    FamilyDef("process_open_fds", "gauge", "Number of open file descriptors.", ()),
    FamilyDef("process_max_fds", "gauge", "Maximum number of open file descriptors.", ()),
    FamilyDef("python_info", "gauge", "Python platform information",
              ("implementation", "major", "minor", "patchlevel", "version")),
    FamilyDef("python_gc_objects_collected", "counter", "Objects collected during gc",
              ("generation",)),
    FamilyDef("python_gc_objects_uncollectable", "counter",
              "Uncollectable objects found during GC", ("generation",)),
    FamilyDef("python_gc_collections", "counter",
              "Number of times this generation was collected", ("generation",)),
)
RUNTIME_DEFS: dict[str, FamilyDef] = {d.name: d for d in _RUNTIME}

FAMILIES: dict[str, FamilyDef] = {d.name: d for d in (*_DEFS, *_RUNTIME)}
assert len(FAMILIES) == len(_DEFS) + len(_RUNTIME), "duplicate family name in metricdefs"

_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _sample_names() -> dict[str, FamilyDef]:
    """Every valid sample name -> its family; gauges win over counters over histograms."""
    names: dict[str, FamilyDef] = {}
    for kind, suffixes in (
        ("gauge", ("",)),
        ("counter", ("_total",)),
        ("histogram", _HISTOGRAM_SUFFIXES),
    ):
        for family in FAMILIES.values():
            if family.type == kind:
                for suffix in suffixes:
                    names.setdefault(family.name + suffix, family)
    return names


# Looked up for every sample rendered, so a dict instead of suffix matching.
_BY_SAMPLE_NAME = _sample_names()


def lookup_family(sample_name: str) -> FamilyDef | None:
    """The family a sample name belongs to, or None if it is not in the contract."""
    return _BY_SAMPLE_NAME.get(sample_name)


def family_of(sample_name: str) -> FamilyDef:
    """The family a sample name belongs to; ``KeyError`` if it is not in the contract."""
    family = lookup_family(sample_name)
    if family is None:
        raise KeyError(f"sample {sample_name!r} belongs to no metric family of metricdefs")
    return family
