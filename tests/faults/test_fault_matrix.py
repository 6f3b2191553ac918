"""The fault matrix (issue 6): one fault at a time on target ``spe1``, ``spe2`` healthy.

Every case checks, after several failing poll rounds: the failing collectors report 0 and
every other collector of both targets 1; ``mailstore_spe_up``; exactly the expected
failure counts by function and reason; the last good data still served; exactly ONE
"collector failed" line per failing collector (no flood) naming the cause; no error
logged (no internal error); no thread growth. Then the fault is cleared and the next
round recovers without a restart, with one "collector recovered" line per collector.

411 is produced with the simulator's ``http_status`` fault: the real 411 needs a request
without Content-Length, which the client never sends. The DNS failure comes from a
patched resolver (``*.invalid`` names fail as NXDOMAIN would; nothing leaves loopback).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from exporter.collectors import ALL_COLLECTORS as DECLARED_COLLECTORS

from .faultkit import (
    ALL_COLLECTORS,
    FAULTY,
    HEALTHY,
    PASSWORD,
    RUNNING,
    USERNAME,
    failures,
    free_port,
    make_exporter,
    make_simulator,
    metrics,
    series_of,
    success,
    target_spec,
    thread_census,
    up,
)

ROUNDS = 3
N = len(RUNNING)

# One series family per collector, compared before/during the fault (data kept).
REPRESENTATIVE = {
    "environment": "mailstore_spe_info",
    "service": "mailstore_spe_server_active",
    "instances": "mailstore_spe_instance_status",
    "statistics": "mailstore_spe_instance_messages",
    "stores": "mailstore_spe_store_messages",
    "process": "mailstore_spe_instance_process_private_memory_bytes",
    "profiles": "mailstore_spe_profile_runs_total",
    "jobs": "mailstore_spe_job_enabled",
    "users": "mailstore_spe_instance_users",
    "compliance": "mailstore_spe_instance_legal_hold_enabled",
    "credentials": "mailstore_spe_credential_certificate_expiry_timestamp_seconds",
}

# Calls per round when every call of the target fails: the first call of each collector
# (its first declared function; per running instance for per-instance collectors;
# GetWorkerResults/GetJobResults are never reached, GetInstances is not asked again
# while the instance list is known).
EVERY_CALL = {
    cls.functions[0]: N if cls.per_instance else 1 for cls in DECLARED_COLLECTORS.values()
}
assert EVERY_CALL["GetProfiles"] == N and EVERY_CALL["GetInstances"] == 1


@dataclass
class Env:
    sim_a: Any
    certs: dict[str, Any]
    proxy: Any
    monkeypatch: pytest.MonkeyPatch
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Case:
    id: str
    reason: str
    calls: dict[str, int]  # function -> failing calls per round
    collectors: tuple[str, ...]  # collectors that fail
    error_text: str  # part of the logged error
    start: Callable[[Env], None]
    stop: Callable[[Env], None]
    up: float = 1.0
    via: str = "sim"  # how spe1 reaches SPE: sim, proxy-ca, proxy-pin, restartable, dns


def sim_fault(function: str, kind: str, **params: Any) -> Callable[[Env], None]:
    return lambda env: env.sim_a.state.set_fault(function, kind, **params)


def clear_faults(env: Env) -> None:
    env.sim_a.state.clear_faults()


def whole_target(case_id: str, reason: str, text: str, start, stop, via: str) -> Case:
    return Case(case_id, reason, EVERY_CALL, ALL_COLLECTORS, text, start, stop, 0.0, via)


# -- the faults that need more than a simulator fault


def _stop_spe(env: Env) -> None:
    env.extra["sim"].stop()


def _restart_spe(env: Env) -> None:
    # SPE back on the same port with the same certificate (a service restart).
    env.extra["sim"] = make_simulator(env.extra["port"], env.extra["cert"]).start()


DNS_NAME = "spe-fault.invalid"


def _patch_resolver(env: Env, resolvable: bool) -> None:
    real = env.extra.setdefault("getaddrinfo", socket.getaddrinfo)

    def getaddrinfo(host, port, *args, **kwargs):
        if host == DNS_NAME:
            if not resolvable:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            host = "127.0.0.1"
        return real(host, port, *args, **kwargs)

    env.monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _break_dns(env: Env) -> None:
    _patch_resolver(env, False)
    env.proxy.drop_connections()


def _rotate_credentials(env: Env) -> None:
    env.sim_a.state.set_credentials(USERNAME, "rotated-" + PASSWORD)


def _restore_credentials(env: Env) -> None:
    env.sim_a.state.set_credentials(USERNAME, PASSWORD)


def _present(cert: str) -> Callable[[Env], None]:
    return lambda env: env.proxy.set_certificate(env.certs[cert])


def per_instance(function: str, collector: str, reason: str, text: str, start) -> Case:
    return Case(
        f"{reason}-{function}", reason, {function: N}, (collector,), text, start, clear_faults
    )


CASES = [
    whole_target("connection-refused", "connection", "refused", _stop_spe, _restart_spe,
                 "restartable"),
    whole_target("dns-failure", "connection", "cannot resolve host name", _break_dns,
                 lambda env: _patch_resolver(env, True), "dns"),
    whole_target("tls-untrusted-certificate", "tls", "certificate verification failed",
                 _present("other"), _present("good"), "proxy-ca"),
    whole_target("tls-pinned-thumbprint-changed", "tls", "does not match the pinned SHA-1",
                 _present("other"), _present("good"), "proxy-pin"),
    whole_target("http-401-credentials-rotated", "http_401", "HTTP 401",
                 _rotate_credentials, _restore_credentials, "sim"),
    per_instance("GetInstanceStatistics", "statistics", "timeout", "read timeout of 0.5 s",
                 sim_fault("GetInstanceStatistics", "latency", seconds=1.0)),
    per_instance("GetStores", "stores", "timeout", "read timeout of 0.5 s",
                 sim_fault("GetStores", "hang")),  # hangs for an hour
    Case("http_403-GetServiceStatus", "http_403", {"GetServiceStatus": 1}, ("service",),
         "HTTP 403", sim_fault("GetServiceStatus", "http_status", status=403), clear_faults,
         up=0.0),
    per_instance("GetUsers", "users", "http_404", "HTTP 404",
                 sim_fault("GetUsers", "http_status", status=404)),
    per_instance("GetComplianceConfiguration", "compliance", "http_4xx", "HTTP 411",
                 sim_fault("GetComplianceConfiguration", "http_status", status=411)),
    # The instance list fails; per-instance collectors go on with the last known list.
    Case("http_5xx-GetInstances", "http_5xx", {"GetInstances": 1}, ("instances",), "HTTP 500",
         sim_fault("GetInstances", "http_status", status=500), clear_faults),
    per_instance("GetJobs", "jobs", "invalid_response", "not valid JSON",
                 sim_fault("GetJobs", "invalid_json")),
    per_instance("GetProfiles", "profiles", "invalid_response", "not valid JSON",
                 sim_fault("GetProfiles", "truncated")),
    per_instance("GetCredentials", "credentials", "connection", "closed or reset",
                 sim_fault("GetCredentials", "truncated", content_length="full")),
    per_instance("GetInstanceProcessLiveStatistics", "process", "connection", "closed or reset",
                 sim_fault("GetInstanceProcessLiveStatistics", "drop_connection")),
    per_instance("GetStores", "stores", "api_error", "Simulated failure.",
                 sim_fault("GetStores", "api_error")),
]


def _faulty_spec(case: Case, env: Env) -> dict[str, Any]:
    sim, certs = env.sim_a, env.certs
    if case.via == "sim":
        return target_spec(sim.url, tls={"ca_file": sim.ca_file})
    if case.via == "proxy-ca":
        return target_spec(env.proxy.url, tls={"ca_file": certs["good"].certfile})
    if case.via == "proxy-pin":
        return target_spec(env.proxy.url, tls={"thumbprint": certs["good"].thumbprint_sha1})
    if case.via == "dns":
        # Through the proxy: the fault closes its connections, so every request has to
        # resolve the name again (a keep-alive connection would not notice DNS failing).
        _patch_resolver(env, True)
        port = env.proxy.url.rsplit(":", 1)[1]
        return target_spec(
            f"https://{DNS_NAME}:{port}", tls={"thumbprint": certs["good"].thumbprint_sha1}
        )
    assert case.via == "restartable"
    port, cert = free_port(), certs["good"]
    env.extra.update(port=port, cert=cert, sim=make_simulator(port, cert).start())
    return target_spec(f"https://127.0.0.1:{port}", tls={"ca_file": cert.certfile})


def _assert_all_ok(values, target: str) -> None:
    failed = [c for c in ALL_COLLECTORS if success(values, c, target) != 1]
    assert failed == [], f"{target}: collectors not succeeding: {failed}"
    assert up(values, target) == 1


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault(case: Case, sim_a, sim_b, certs, proxy, logs, monkeypatch):
    env = Env(sim_a, certs, proxy, monkeypatch)
    exp = make_exporter(
        _faulty_spec(case, env), target_spec(sim_b.url, tls={"ca_file": sim_b.ca_file}),
        sim_a.state.now,
    )
    try:
        # A healthy round: instance list known, per-target pools started.
        exp.poller.run_all_once()
        before = metrics(exp)
        for target in (FAULTY, HEALTHY):
            _assert_all_ok(before, target)
            assert failures(before, target) == {}
        threads_before, _ = thread_census()
        logs.clear()

        case.start(env)
        for round_ in range(ROUNDS):
            # Round 0 runs everything (are the others affected?); later rounds repeat the
            # failing collectors (one log line, however long the fault lasts?).
            for name in ALL_COLLECTORS if round_ == 0 else case.collectors:
                exp.poller.run_collector(FAULTY, name)
            if round_ == 0:  # the healthy target polls while spe1 is broken
                for name in ALL_COLLECTORS:
                    exp.poller.run_collector(HEALTHY, name)
        during = metrics(exp)

        # The failing collectors, and only they, report 0; spe2 is untouched.
        for collector in ALL_COLLECTORS:
            expected = 0 if collector in case.collectors else 1
            assert success(during, collector) == expected, collector
        _assert_all_ok(during, HEALTHY)
        assert up(during) == case.up
        if case.up == 0 and "environment" not in case.collectors:
            # GetEnvironmentInfo answering does not hide a failing GetServiceStatus: up
            # stays 0 whichever of the two polls ran last.
            exp.poller.run_collector(FAULTY, "environment")
            assert up(metrics(exp)) == 0
        # Exactly the expected calls failed, all with the expected reason.
        expected_failures = {(fn, case.reason): n * ROUNDS for fn, n in case.calls.items()}
        assert failures(during) == expected_failures
        assert failures(during, HEALTHY) == {}
        # The last good data is still served (well within max_data_age).
        for name in REPRESENTATIVE.values():
            assert series_of(during, name) == series_of(before, name), name
        # One warning per failing collector for the whole fault, naming the cause.
        failed_lines = logs.health("collector failed")
        assert logs.by_collector("collector failed") == dict.fromkeys(case.collectors, 1)
        for record in failed_lines:
            assert case.error_text in record.error, record.error
        assert logs.health("collector failed", HEALTHY) == []
        assert logs.errors() == []
        # No thread growth: the target pools stay within their size.
        threads_during, pools = thread_census()
        assert threads_during <= threads_before + 1, threading_report()
        assert all(n <= 4 for n in pools.values()), pools

        case.stop(env)
        for name in ALL_COLLECTORS:
            exp.poller.run_collector(FAULTY, name)
        after = metrics(exp)
        _assert_all_ok(after, FAULTY)
        _assert_all_ok(after, HEALTHY)
        assert failures(after) == expected_failures  # nothing new failed
        assert logs.by_collector("collector recovered") == dict.fromkeys(case.collectors, 1)
        assert logs.by_collector("collector failed") == dict.fromkeys(case.collectors, 1)
    finally:
        exp.stop()
        if "sim" in env.extra:
            env.extra["sim"].stop()


def threading_report() -> str:
    import threading

    return ", ".join(sorted(t.name for t in threading.enumerate()))

