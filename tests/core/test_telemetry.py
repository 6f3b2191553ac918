"""The exporter's own API-call and long-running-operation series."""

from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.exposition import assemble
from exporter.spe.errors import SPEAuthError, SPETimeoutError
from exporter.telemetry import Telemetry


def _samples(telemetry):
    body = assemble([telemetry.blocks()], openmetrics=False).decode()
    out = {}
    for family in parse_text(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_requests_failures_and_histogram():
    t = Telemetry("spe1")
    t.request_finished("GetStores", 0.2, None)
    t.request_finished("GetStores", 3.0, SPETimeoutError("read timeout"))
    t.request_finished("GetUsers", 0.1, SPEAuthError("bad", status=401))
    s = _samples(t)
    assert (
        s[("mailstore_spe_api_requests_total", (("function", "GetStores"), ("target", "spe1")))]
        == 2
    )
    assert (
        s[
            (
                "mailstore_spe_api_request_failures_total",
                (("function", "GetStores"), ("reason", "timeout"), ("target", "spe1")),
            )
        ]
        == 1
    )
    assert (
        s[
            (
                "mailstore_spe_api_request_failures_total",
                (("function", "GetUsers"), ("reason", "http_401"), ("target", "spe1")),
            )
        ]
        == 1
    )
    assert (
        s[
            (
                "mailstore_spe_api_request_duration_seconds_count",
                (("function", "GetStores"), ("target", "spe1")),
            )
        ]
        == 2
    )
    assert (
        s[
            (
                "mailstore_spe_api_request_duration_seconds_sum",
                (("function", "GetStores"), ("target", "spe1")),
            )
        ]
        == 3.2
    )
    inf = (
        "mailstore_spe_api_request_duration_seconds_bucket",
        (("function", "GetStores"), ("le", "+Inf"), ("target", "spe1")),
    )
    assert s[inf] == 2


def test_async_lifecycle_progress_and_results():
    now = [1000.0]
    t = Telemetry("spe1", clock=lambda: now[0])
    labels = (("function", "VerifyStores"), ("target", "spe1"))
    t.async_started("VerifyStores", "tok1")
    t.async_progress("VerifyStores", "tok1", 40, "verifying")
    s = _samples(t)
    assert s[("mailstore_spe_async_operations_in_progress", labels)] == 1
    assert s[("mailstore_spe_async_operation_progress_ratio", labels)] == 0.4
    t.async_finished("VerifyStores", "tok1", "succeeded", 12.5)
    s = _samples(t)
    assert s[("mailstore_spe_async_operations_in_progress", labels)] == 0
    # progress is only present while running
    assert ("mailstore_spe_async_operation_progress_ratio", labels) not in s
    assert (
        s[
            (
                "mailstore_spe_async_operations_total",
                (*labels[:1], ("result", "succeeded"), labels[1]),
            )
        ]
        == 1
    )
    assert (
        s[("mailstore_spe_async_operations_total", (*labels[:1], ("result", "timeout"), labels[1]))]
        == 0
    )
    assert s[("mailstore_spe_async_operation_last_duration_seconds", labels)] == 12.5
    assert s[("mailstore_spe_async_operation_last_success_timestamp_seconds", labels)] == 1000.0
    t.async_started("VerifyStores", "tok2")
    t.async_finished("VerifyStores", "tok2", "failed", 1.0, error="Store 3 is damaged")
    assert t.async_errors() == {"VerifyStores": "Store 3 is damaged"}


def test_blocks_are_rerendered_only_after_a_change():
    t = Telemetry("spe1")
    t.request_finished("Ping", 0.01, None)
    first = t.blocks()
    assert t.blocks() is first
    t.request_finished("Ping", 0.01, None)
    assert t.blocks() is not first
