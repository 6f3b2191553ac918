"""Property: whatever JSON SPE answers, parsing rejects it cleanly or accepts it; never a crash.

Arbitrary JSON values, and "near-valid" values derived from the simulator's real results
with fields deleted or replaced by arbitrary JSON, go through every collector's pure
parse functions (only ``ParseError`` may escape) and through the whole ``collect()``
with a fake client (the run may fail, but never with an "internal error"). Envelopes
go through the client's decoder (only ``SPEInvalidResponseError`` may escape).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.collectors import (
    ALL_COLLECTORS,
    access,
    compliance,
    credentials,
    environment,
    instances,
    jobs,
    process,
    profiles,
    service,
    statistics,
    stores,
    users,
)
from exporter.collectors.base import CollectContext, InstanceRef
from exporter.collectors.parsing import ParseError
from exporter.exposition import render_blocks
from exporter.snapshot import RunSink
from exporter.spe.client import SPEClient
from exporter.spe.envelope import decode_envelope
from exporter.spe.errors import SPEInvalidResponseError
from exporter.spe.observer import ClientObserver

from .faultkit import PASSWORD, USERNAME

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TARGET = "spe1"
IID = "acme"
NOW = 1777723200.0

# ------------------------------------------------------------------------ strategies

# Datetime-like strings, valid and subtly broken (cheaper than a regex strategy).
datetimes = st.sampled_from([
    "2026-05-02T03:30:04", "2026-05-02 03:30:04", "2026-07-15T10:58:01Z",
    "2026-07-15T10:58:01.1234567Z", "2026-07-15T10:58:01+02:00", "2026-07-15T10:58:01-0930",
    "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "0000-00-00T00:00:00",
    "2026-02-30T25:61:61", "2026-05-02T03:30:04+99:99", "2026-05-02T03:30:04." + "9" * 5000,
    "\u0662\u0660\u0662\u0666-05-02T03:30:04", "2026-05-02", "",
])
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**400), 2**63, 1e308, 0.5, -0.0])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | datetimes
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@st.composite
def near(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with some parts deleted, nulled, retyped or recursed into."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            action = draw(st.sampled_from(["keep", "keep", "keep", "recurse", "drop", "replace"]))
            if action == "keep":
                out[key] = item
            elif action == "recurse":
                out[key] = draw(near(item))
            elif action == "replace":
                out[key] = draw(json_values)
        return out
    if isinstance(value, list):
        items = [draw(near(item)) for item in value[:3]]
        if items and draw(st.booleans()):
            items.append(items[0])  # duplicate row (same ids)
        return items
    return draw(st.one_of(st.just(value), json_values))


# ------------------------------------------------------- real results from the simulator


@pytest.fixture(scope="module")
def real(sim_a) -> dict[str, Any]:
    """One real result per function (instance acme), as the simulator answers."""
    end = datetime.fromtimestamp(sim_a.state.now(), UTC).replace(tzinfo=None, microsecond=0)
    window = {"fromIncluding": end - timedelta(days=1), "toExcluding": end}
    with SPEClient(sim_a.url, USERNAME, PASSWORD, ca_file=sim_a.ca_file) as client:
        acme = {"instanceID": IID}
        return {
            "GetEnvironmentInfo": client.call("GetEnvironmentInfo"),
            "GetServiceStatus": client.call("GetServiceStatus"),
            "GetInstances": client.call("GetInstances", instanceFilter="*"),
            "GetInstanceStatistics": client.call("GetInstanceStatistics", **acme),
            "GetStores": client.call("GetStores", includeSize=True, **acme),
            "GetInstanceProcessLiveStatistics": client.call(
                "GetInstanceProcessLiveStatistics", **acme
            ),
            "GetUsers": client.call("GetUsers", **acme),
            "GetComplianceConfiguration": client.call("GetComplianceConfiguration", **acme),
            "GetCredentials": client.call("GetCredentials", **acme),
            "GetProfiles": client.call("GetProfiles", raw=True, **acme),
            "GetWorkerResults": client.call(
                "GetWorkerResults", timeZoneID="UTC", **window, **acme
            ),
            "GetJobs": client.call("GetJobs", **acme),
            "GetJobResults": client.call("GetJobResults", timeZoneId="UTC", **window, **acme),
            "GetTimeZones": client.call("GetTimeZones", **acme),
            "GetArchiveAdminEnabled": client.call("GetArchiveAdminEnabled", **acme),
        }


def results_for(real: dict[str, Any], functions: tuple[str, ...]) -> st.SearchStrategy:
    """function -> arbitrary JSON, or a near-valid variant of its real result."""
    return st.fixed_dictionaries(
        {fn: st.one_of(json_values, near(real[fn]), st.just(real[fn])) for fn in functions}
    )


# -------------------------------------------------------------------- pure parsers


def _parse_profiles(r: dict[str, Any]) -> None:
    defs = profiles.parse_profiles(r["GetProfiles"])
    runs = profiles.parse_worker_results(r["GetWorkerResults"])
    state = profiles.InstanceProfiles(profiles.ResultLedger(profiles.WindowPolicy(86400)))
    state.ledger.windows(NOW)
    profiles.apply_runs(state, defs, runs)
    render_blocks(profiles.profile_samples(TARGET, IID, defs, state))


def _parse_jobs(r: dict[str, Any]) -> None:
    defs = jobs.parse_jobs(r["GetJobs"])
    runs = jobs.parse_job_results(r["GetJobResults"])
    state = jobs.InstanceJobs(jobs.ResultLedger(jobs.WindowPolicy(3600)))
    state.ledger.windows(NOW)
    jobs.apply_job_runs(state, defs, runs)
    render_blocks(jobs.job_samples(TARGET, IID, defs, state))


PARSERS = {
    "environment": (("GetEnvironmentInfo",), lambda r: environment.parse_environment(
        TARGET, r["GetEnvironmentInfo"])),
    "service": (("GetServiceStatus",), lambda r: service.parse_service_status(
        TARGET, r["GetServiceStatus"])),
    "instances": (("GetInstances",), lambda r: instances.instance_samples(
        TARGET, instances.parse_instance_rows(r["GetInstances"]))),
    "statistics": (("GetInstanceStatistics",), lambda r: statistics.parse_statistics(
        TARGET, IID, r["GetInstanceStatistics"])),
    "stores": (("GetStores",), lambda r: stores.parse_stores(TARGET, IID, r["GetStores"])),
    "process": (("GetInstanceProcessLiveStatistics",), lambda r: process.parse_process(
        TARGET, IID, r["GetInstanceProcessLiveStatistics"])),
    "users": (("GetUsers",), lambda r: users.parse_users(TARGET, IID, r["GetUsers"])),
    "compliance": (("GetComplianceConfiguration",), lambda r: compliance.parse_compliance(
        TARGET, IID, r["GetComplianceConfiguration"])),
    "credentials": (("GetCredentials",), lambda r: credentials.parse_credentials(
        TARGET, IID, r["GetCredentials"])),
    "profiles": (("GetProfiles", "GetWorkerResults", "GetTimeZones"), _parse_profiles),
    "jobs": (("GetJobs", "GetJobResults", "GetTimeZones"), _parse_jobs),
    "access": (("GetArchiveAdminEnabled",), lambda r: access.access_samples(
        TARGET, IID, access.parse_access_flag(r["GetArchiveAdminEnabled"]))),
}


def test_every_collector_has_a_parser_under_test():
    assert set(PARSERS) == set(ALL_COLLECTORS)


class FakeClient:
    stopped = False

    def __init__(self, results: dict[str, Any]) -> None:
        self.results = results
        self.report = ClientObserver()

    def call(self, function: str, **_: Any) -> Any:
        return self.results[function]


@pytest.mark.parametrize("name", list(PARSERS))
def test_parsers_and_collect_reject_or_accept_never_crash(name, real):
    functions, parse = PARSERS[name]
    if ALL_COLLECTORS[name].per_instance:
        functions = (*functions, "GetInstances")  # asked when no instance list is known

    @SETTINGS
    @given(results=results_for(real, functions), known=st.booleans())
    def check(results: dict[str, Any], known: bool) -> None:
        try:
            samples = parse(results)
        except ParseError:
            pass
        else:
            if isinstance(samples, list):
                render_blocks(samples)  # what was accepted can be exposed
        # The whole run with a fake client: it may fail, never with an internal error.
        ctx = CollectContext(
            target=TARGET,
            client=FakeClient(results),  # type: ignore[arg-type]
            instance_filter="*",
            concurrency=1,
            known_instances=[InstanceRef(IID, "running")] if known else None,
            now=lambda: NOW,
            sink=RunSink(),  # renders what the run puts, as the scheduler's does
        )
        result = ALL_COLLECTORS[name]().collect(ctx)
        assert not [e for e in result.errors if "internal error" in e], result.errors
        ctx.sink.writer.finish(NOW)

    check()


# ------------------------------------------------------------------------- envelopes

envelopes = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"statusCode": st.one_of(st.sampled_from(["succeeded", "failed", "running"]), scalars)},
        optional={
            key: json_values
            for key in ("error", "token", "statusVersion", "percentProgress", "statusText",
                        "result", "logOutput")
        },
    ),
)


@SETTINGS
@given(value=envelopes, bom=st.booleans())
def test_envelope_decoding_rejects_or_accepts_never_crashes(value, bom):
    body = (b"\xef\xbb\xbf" if bom else b"") + json.dumps(value).encode()
    try:
        decode_envelope(body)
    except SPEInvalidResponseError:
        pass


@SETTINGS
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_envelope_decoding_of_arbitrary_bytes(body):
    try:
        decode_envelope(body)
    except SPEInvalidResponseError:
        pass
