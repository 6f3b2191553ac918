"""The metric definitions match the public contract (metrics-contract.md)."""

from __future__ import annotations

import pytest

from exporter.metricdefs import DURATION_BUCKETS, FAMILIES, family_of

# Sample name -> labels, copied from the contract. A rename here is a breaking change.
CONTRACT = {
    "mailstore_spe_up": "target",
    "mailstore_spe_collector_success": "target collector",
    "mailstore_spe_collector_duration_seconds": "target collector",
    "mailstore_spe_collector_last_success_timestamp_seconds": "target collector",
    "mailstore_spe_collector_interval_seconds": "target collector",
    "mailstore_spe_collector_runs_skipped_total": "target collector",
    "mailstore_spe_instance_collect_success": "target instance_id collector",
    "mailstore_spe_api_requests_total": "target function",
    "mailstore_spe_api_request_failures_total": "target function reason",
    "mailstore_spe_api_request_duration_seconds": "target function",
    # + revision (git commit; issue 14), as in Prometheus' own *_build_info
    "mailstore_spe_exporter_build_info": "version revision python_version",
    "mailstore_spe_async_operations_in_progress": "target function",
    "mailstore_spe_async_operations_total": "target function result",
    "mailstore_spe_async_operation_duration_seconds": "target function",
    "mailstore_spe_async_operation_last_duration_seconds": "target function",
    "mailstore_spe_async_operation_last_success_timestamp_seconds": "target function",
    "mailstore_spe_async_operation_progress_ratio": "target function",
    "mailstore_spe_info": "target version web_client_version server_name licensee_name "
    "licensee_id",
    "mailstore_spe_server_active": "target server_name server_type port",
    "mailstore_spe_server_memory_bytes": "target server_name server_type",
    "mailstore_spe_server_processors": "target server_name server_type",
    "mailstore_spe_server_certificate_info": "target server_name server_type thumbprint",
    "mailstore_spe_instance_host_instances": "target server_name",
    "mailstore_spe_instance_host_running_instances": "target server_name",
    "mailstore_spe_service_messages": "target message_severity",  # renamed (issue 11)
    "mailstore_spe_instance_info": "target instance_id alias display_name instance_host "
    "start_mode",
    "mailstore_spe_instance_status": "target instance_id status",
    "mailstore_spe_instance_start_stop_error": "target instance_id",
    "mailstore_spe_instance_archive_size_bytes": "target instance_id",
    "mailstore_spe_instance_database_size_bytes": "target instance_id",
    "mailstore_spe_instance_content_size_bytes": "target instance_id",
    "mailstore_spe_instance_index_size_bytes": "target instance_id",
    "mailstore_spe_instance_messages": "target instance_id",
    "mailstore_spe_instance_process_cpu_seconds_total": "target instance_id",
    "mailstore_spe_instance_process_io_read_bytes_total": "target instance_id",
    "mailstore_spe_instance_process_io_write_bytes_total": "target instance_id",
    "mailstore_spe_instance_process_io_other_bytes_total": "target instance_id",
    "mailstore_spe_instance_process_messages_archived_total": "target instance_id",
    "mailstore_spe_instance_process_messages_checked_total": "target instance_id",
    "mailstore_spe_instance_process_private_memory_bytes": "target instance_id",
    "mailstore_spe_instance_users": "target instance_id",
    "mailstore_spe_instance_legal_hold_enabled": "target instance_id",
    "mailstore_spe_store_size_bytes": "target instance_id store_id store_name",
    "mailstore_spe_store_messages": "target instance_id store_id store_name",
    "mailstore_spe_store_state": "target instance_id store_id store_name state",
    "mailstore_spe_store_error": "target instance_id store_id store_name",
    "mailstore_spe_store_needs_upgrade": "target instance_id store_id store_name",
    "mailstore_spe_store_search_indexes_need_rebuild": "target instance_id store_id store_name",
    "mailstore_spe_profile_runs_total": "target instance_id profile_id profile_name result",
    "mailstore_spe_profile_items_archived_total": "target instance_id profile_id profile_name",
    "mailstore_spe_profile_last_run_timestamp_seconds": "target instance_id profile_id "
    "profile_name",
    "mailstore_spe_profile_last_success_timestamp_seconds": "target instance_id profile_id "
    "profile_name",
    "mailstore_spe_profile_last_run_duration_seconds": "target instance_id profile_id "
    "profile_name",
    "mailstore_spe_profile_last_run_result": "target instance_id profile_id profile_name result",
    "mailstore_spe_profile_automatic": "target instance_id profile_id profile_name",
    "mailstore_spe_job_enabled": "target instance_id job_id job_name action",
    "mailstore_spe_job_last_run_timestamp_seconds": "target instance_id job_id job_name action",
    "mailstore_spe_job_next_run_timestamp_seconds": "target instance_id job_id job_name action",
    "mailstore_spe_job_runs_total": "target instance_id job_id action result",
    "mailstore_spe_credential_certificate_expiry_timestamp_seconds": "target instance_id "
    "credential_id credential_type",
    # Beyond the shared contract: opt-in maintenance schedules (issue 4).
    "mailstore_spe_maintenance_runs_skipped_total": "target function",
}
HISTOGRAMS = {
    "mailstore_spe_api_request_duration_seconds",
    "mailstore_spe_async_operation_duration_seconds",
}


@pytest.mark.parametrize("sample_name", sorted(CONTRACT))
def test_every_contract_metric_is_defined_with_its_labels(sample_name: str) -> None:
    probe = f"{sample_name}_count" if sample_name in HISTOGRAMS else sample_name
    family = family_of(probe)
    assert family.labels == tuple(CONTRACT[sample_name].split())
    if sample_name.endswith("_total"):
        assert family.type == "counter"
        assert family.name == sample_name.removesuffix("_total")
    elif sample_name in HISTOGRAMS:
        assert family.type == "histogram"
    else:
        assert family.type == "gauge"
    assert family.help.endswith(".")


# Families beyond the contract (v1), each added by an issue and listed in the README.
EXTRAS = {
    "mailstore_spe_config_last_reload_successful",  # config reload (issue 6)
    "mailstore_spe_config_last_reload_success_timestamp_seconds",
    "mailstore_spe_maintenance_runs_skipped_total",  # maintenance schedules (issue 4)
    # the exporter's own process and runtime, prometheus_client's usual names (issue 14)
    "process_cpu_seconds_total", "process_virtual_memory_bytes", "process_resident_memory_bytes",
    "process_start_time_seconds", "process_open_fds", "process_max_fds", "python_info",
    "python_gc_objects_collected_total", "python_gc_objects_uncollectable_total",
    "python_gc_collections_total",
    "mailstore_spe_service_messages_by_category",  # signals operators miss (issue 12)
    "mailstore_spe_instance_users_by_mfa_status",
    "mailstore_spe_instance_process_restarts_total",
    "mailstore_spe_instance_process_first_seen_timestamp_seconds",
    "mailstore_spe_instance_service_provider_access_enabled",  # access as state (issue 11)
}


def test_no_family_beyond_the_contract_and_the_documented_extras() -> None:
    defined = {f.sample_name() if f.type != "histogram" else f.name for f in FAMILIES.values()}
    assert set(CONTRACT) <= defined
    assert defined - set(CONTRACT) <= EXTRAS


def test_family_of_resolves_suffixes_only_for_the_right_type() -> None:
    assert family_of("mailstore_spe_api_requests_total").name == "mailstore_spe_api_requests"
    for suffix in ("_bucket", "_sum", "_count"):
        assert family_of(f"mailstore_spe_api_request_duration_seconds{suffix}").type == (
            "histogram"
        )
    with pytest.raises(KeyError):
        family_of("mailstore_spe_api_requests")  # a counter's sample always ends in _total
    with pytest.raises(KeyError):
        family_of("mailstore_spe_up_total")  # a gauge has no _total sample
    with pytest.raises(KeyError):
        family_of("mailstore_spe_no_such_metric")


def test_no_label_called_instance_and_cached_series_say_so() -> None:
    for family in FAMILIES.values():
        assert "instance" not in family.labels
        if family.labels[:2] == ("target", "instance_id") and family.name != (
            "mailstore_spe_instance_collect_success"
        ):
            assert "Refreshed every collector interval" in family.help, family.name


def test_duration_buckets_are_increasing_and_reach_the_async_deadline() -> None:
    assert list(DURATION_BUCKETS) == sorted(set(DURATION_BUCKETS))
    assert DURATION_BUCKETS[-1] >= 600
