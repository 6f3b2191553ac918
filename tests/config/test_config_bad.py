"""Table test: invalid configs and the exact messages a user sees (one line per problem)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import ConfigError, load_config

DROP = object()  # marks a key to remove from the valid base target


def target(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "url": "https://spe.example.com",
        "username": "monitoring",
        "password": "pw",
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not DROP}


def config(**top: Any) -> dict[str, Any]:
    top.setdefault("targets", {"spe1": target()})
    return {key: value for key, value in top.items() if value is not DROP}


def collectors(**entries: Any) -> dict[str, Any]:
    return {"collectors": entries}


T = "targets.spe1"
M = f"{T}.maintenance[0]"


def maint(**changes: Any) -> dict[str, Any]:
    """A valid maintenance entry, changed by ``changes``."""
    base: dict[str, Any] = {
        "function": "RetryOpenStores",
        "args": {"instanceID": "acme"},
        "schedule": {"interval": "1h"},
    }
    base.update(changes)
    return base

# In display order: the collectors of the whole server, then the per-instance ones, by name.
KNOWN_COLLECTORS = (
    "environment, instances, service, access, compliance, credentials, jobs, process, profiles, "
    "statistics, stores, users"
)

# (id, config as a dict or raw YAML text, expected messages; "{dir}" = the config's directory)
CASES: list[tuple[str, Any, list[str]]] = [
    (
        "unknown top-level key with suggestion",
        config(target={"spe1": target()}, targets=DROP),
        [
            "targets: at least one target is required",
            "top level: unknown key 'target' (did you mean 'targets'?)",
        ],
    ),
    (
        "unknown nested key lists the known keys",
        config(targets={"spe1": target(tls={"verify": False})}),
        [f"{T}.tls: unknown key 'verify'; known keys: ca_file, insecure_skip_verify, thumbprint"],
    ),
    (
        "typo in a target key suggests the right one",
        config(targets={"spe1": target(password=DROP, pasword="x")}),
        [f"{T}: unknown key 'pasword' (did you mean 'password'?)"],
    ),
    (
        "bad duration",
        config(targets={"spe1": target(**collectors(stores={"interval": "5 minutes"}))}),
        [f"{T}.collectors.stores.interval: must be a duration like 30s, 5m or 1h"],
    ),
    (
        "zero interval",
        config(targets={"spe1": target(**collectors(users={"interval": 0}))}),
        [f"{T}.collectors.users.interval: must be at least 1s"],
    ),
    (
        "sub-second interval",
        config(targets={"spe1": target(**collectors(users={"interval": "500ms"}))}),
        [f"{T}.collectors.users.interval: must be at least 1s"],
    ),
    (
        "zero timeout",
        config(targets={"spe1": target(timeouts={"read": "0s"})}),
        [f"{T}.timeouts.read: must be greater than 0"],
    ),
    (
        "enabled is not a boolean",
        config(targets={"spe1": target(**collectors(jobs={"enabled": "maybe"}))}),
        [f"{T}.collectors.jobs.enabled: must be true or false"],
    ),
    (
        "bad url scheme",
        config(targets={"spe1": target(url="ftp://spe.example.com")}),
        [f"{T}.url: must start with https:// (e.g. https://spe.example.com:8474)"],
    ),
    (
        "url without scheme",
        config(targets={"spe1": target(url="spe.example.com:8474")}),
        [f"{T}.url: must start with https:// (e.g. https://spe.example.com:8474)"],
    ),
    (
        "url with path",
        config(targets={"spe1": target(url="https://spe.example.com:8474/api/invoke")}),
        [f"{T}.url: must not contain a path; give only scheme, host and port"],
    ),
    (
        "url with query",
        config(targets={"spe1": target(url="https://spe.example.com/?a=1")}),
        [f"{T}.url: must not contain a query or fragment"],
    ),
    (
        "url with credentials does not echo them",
        config(targets={"spe1": target(url="https://admin:hunter2@spe.example.com")}),
        [f"{T}.url: must not contain credentials; use username and password"],
    ),
    (
        "url with bad port",
        config(targets={"spe1": target(url="https://spe.example.com:99999")}),
        [f"{T}.url: has an invalid port (must be 1-65535)"],
    ),
    (
        "missing username",
        config(targets={"spe1": target(username=DROP)}),
        [f"{T}: missing required key 'username'"],
    ),
    (
        "empty username",
        config(targets={"spe1": target(username="  ")}),
        [f"{T}.username: must not be empty"],
    ),
    (
        "password and password_file",
        config(targets={"spe1": target(password_file="pw.txt")}),
        [f"{T}: set either password or password_file, not both"],
    ),
    (
        "neither password nor password_file",
        config(targets={"spe1": target(password=DROP)}),
        [f"{T}: missing password: set password or password_file"],
    ),
    (
        "password_file missing",
        config(targets={"spe1": target(password=DROP, password_file="nope.txt")}),
        [f"{T}.password_file: file not found: {{dir}}/nope.txt"],
    ),
    (
        "password_file empty",
        config(targets={"spe1": target(password=DROP, password_file="empty.txt")}),
        [f"{T}.password_file: file is empty: {{dir}}/empty.txt"],
    ),
    (
        "ca_file missing",
        config(targets={"spe1": target(tls={"ca_file": "/nonexistent/ca.pem"})}),
        [f"{T}.tls.ca_file: file not found: /nonexistent/ca.pem"],
    ),
    (
        "ca_file is not PEM",
        config(targets={"spe1": target(tls={"ca_file": "pw.txt"})}),
        [
            f"{T}.tls.ca_file: no PEM certificate (-----BEGIN CERTIFICATE-----) in file: "
            "{dir}/pw.txt"
        ],
    ),
    (
        "thumbprint of the wrong length",
        config(targets={"spe1": target(tls={"thumbprint": "AB" * 16})}),
        [
            f"{T}.tls.thumbprint: must be 40 hex digits (SHA-1, as SPE shows it) or 64 "
            "(SHA-256), got 32"
        ],
    ),
    (
        "thumbprint with non-hex characters",
        config(targets={"spe1": target(tls={"thumbprint": "ZZ" * 20})}),
        [f"{T}.tls.thumbprint: must contain only hex digits 0-9 and A-F (':' and spaces allowed)"],
    ),
    (
        "insecure_skip_verify with ca_file",
        config(targets={"spe1": target(tls={"ca_file": "ca.pem", "insecure_skip_verify": True})}),
        [f"{T}.tls.insecure_skip_verify: cannot be true together with ca_file or thumbprint"],
    ),
    (
        "unknown collector lists the known ones",
        config(targets={"spe1": target(**collectors(stoers={"enabled": False}))}),
        [
            f"{T}.collectors: unknown collector 'stoers' (did you mean 'stores'?); "
            f"known collectors: {KNOWN_COLLECTORS}"
        ],
    ),
    (
        "bad target name",
        config(targets={"1spe": target()}),
        [
            "targets.1spe: invalid target name: must start with a letter or '_' and contain "
            "only letters, digits, '_', '.' and '-'"
        ],
    ),
    (
        "undefined environment variable",
        config(targets={"spe1": target(password="${UNSET_VAR}")}),
        [f"{T}.password: environment variable UNSET_VAR is not set"],
    ),
    (
        "malformed variable reference",
        config(targets={"spe1": target(username="${not a name}")}),
        [f"{T}.username: invalid variable reference; use ${{NAME}} or ${{NAME:-default}}"],
    ),
    (
        "bad log level",
        config(log={"level": "verbose"}),
        ["log.level: must be one of: debug, info, warn, warning, error"],
    ),
    (
        "bad log format",
        config(log={"format": "text"}),
        ["log.format: must be one of: logfmt, json"],
    ),
    (
        "bad listen address",
        config(web={"listen_address": ":::9474"}),
        ["web.listen_address: must put an IPv6 address in brackets, e.g. [::]:9474"],
    ),
    (
        "bad listen port",
        config(web={"listen_address": "0.0.0.0:70000"}),
        ["web.listen_address: port must be a number from 0 to 65535"],
    ),
    (
        "non-numeric listen port",
        config(web={"listen_address": "localhost:http"}),
        ["web.listen_address: port must be a number from 0 to 65535"],
    ),
    (
        "result window overlap cap below an hour",
        config(targets={"spe1": target(result_windows={"max_overlap": "30m"})}),
        [f"{T}.result_windows.max_overlap: must be at least 1h (the least overlap of result "
         "windows)"],
    ),
    (
        "unknown result_windows key",
        config(targets={"spe1": target(result_windows={"overlap": "2h"})}),
        [f"{T}.result_windows: unknown key 'overlap' (did you mean 'max_overlap'?)"],
    ),
    (
        "concurrency out of range",
        config(targets={"spe1": target(concurrency=0)}),
        [f"{T}.concurrency: must be between 1 and 256"],
    ),
    (
        "concurrency not a number",
        config(targets={"spe1": target(concurrency="many")}),
        [f"{T}.concurrency: must be a whole number from 1 to 256"],
    ),
    (
        "max_data_age shorter than an interval",
        config(targets={"spe1": target(max_data_age="10m")}),
        [f"{T}.max_data_age: 10m is shorter than the 1h interval of collector 'compliance'"],
    ),
    (
        "per-collector max_data_age shorter than its interval",
        config(targets={"spe1": target(**collectors(stores={"max_data_age": "1m"}))}),
        [
            f"{T}.collectors.stores.max_data_age: 1m is shorter than the 5m interval of collector "
            "'stores'"
        ],
    ),
    (
        "bad max_data_age",
        config(targets={"spe1": target(max_data_age="never")}),
        [f"{T}.max_data_age: must be 'auto' or a duration like 30s, 5m or 1h"],
    ),
    (
        "no targets",
        config(targets={}),
        ["targets: at least one target is required"],
    ),
    (
        "targets key missing",
        config(targets=DROP),
        ["targets: at least one target is required"],
    ),
    (
        "target is not a mapping",
        config(targets={"spe1": "https://spe.example.com"}),
        [f"{T}: must be a mapping of keys to values"],
    ),
    (
        "password in defaults",
        config(defaults={"password": "x"}),
        ["defaults: 'password' cannot be set in defaults, only per target"],
    ),
    (
        "invalid default reported once, not once per target",
        config(
            defaults={"concurrency": 999},
            targets={"spe1": target(), "spe2": target()},
        ),
        ["defaults.concurrency: must be between 1 and 256"],
    ),
    (
        "maintenance function outside the allow-list",
        config(targets={"spe1": target(maintenance=[maint(function="CompactStore")])}),
        [
            f"{M}.function: not an allowed maintenance function; allowed: "
            "RefreshAllStoreStatistics, RetryOpenStores, VerifyStore, VerifyStores"
        ],
    ),
    (
        "maintenance argument with a typo",
        config(targets={"spe1": target(maintenance=[maint(args={"instanceId": "acme"})])}),
        [
            f"{M}.args.instanceId: unknown argument (did you mean 'instanceID'?); "
            "RetryOpenStores takes instanceID"
        ],
    ),
    (
        "maintenance arguments missing",
        config(
            targets={
                "spe1": target(maintenance=[maint(function="VerifyStore", args={"id": 3})])
            }
        ),
        [
            f"{M}.args: missing arguments instanceID, includeIndexes; VerifyStore takes "
            "instanceID, id, includeIndexes"
        ],
    ),
    (
        "maintenance argument of the wrong type",
        config(
            targets={
                "spe1": target(
                    maintenance=[
                        maint(
                            function="VerifyStores",
                            args={"instanceID": "acme", "includeIndexes": [True]},
                        )
                    ]
                )
            }
        ),
        [f"{M}.args.includeIndexes: must be true or false"],
    ),
    (
        "maintenance cron expression invalid",
        config(targets={"spe1": target(maintenance=[maint(schedule={"cron": "61 3 * * 0"})])}),
        [
            f"{M}.schedule.cron: invalid crontab expression: Error validating expression "
            "'61': the last value (61) is higher than the maximum value (59)"
        ],
    ),
    (
        "maintenance cron expression with 4 fields",
        config(targets={"spe1": target(maintenance=[maint(schedule={"cron": "0 3 * *"})])}),
        [f"{M}.schedule.cron: must have 5 fields (minute hour day month weekday), got 4"],
    ),
    (
        "maintenance schedule with both cron and interval",
        config(
            targets={
                "spe1": target(maintenance=[maint(schedule={"cron": "0 3 * * 0", "interval": 60})])
            }
        ),
        [f"{M}.schedule: set exactly one of cron or interval"],
    ),
    (
        "maintenance time zone unknown",
        config(
            targets={
                "spe1": target(
                    maintenance=[maint(schedule={"cron": "0 3 * * 0", "timezone": "Mars/Base"})]
                )
            }
        ),
        [f"{M}.schedule.timezone: unknown time zone; use an IANA name like UTC or Europe/Berlin"],
    ),
    (
        "maintenance deadline zero and an unknown key",
        config(targets={"spe1": target(maintenance=[maint(deadline="0s", nmae="x")])}),
        [
            f"{M}.deadline: must be greater than 0",
            f"{M}: unknown key 'nmae' (did you mean 'name'?)",
        ],
    ),
    (
        "maintenance in defaults reported under defaults",
        config(defaults={"maintenance": [maint(), maint(function="RebuildSelectedStoreIndexes")]}),
        [
            "defaults.maintenance[1].function: not an allowed maintenance function; allowed: "
            "RefreshAllStoreStatistics, RetryOpenStores, VerifyStore, VerifyStores"
        ],
    ),
    (
        "maintenance not a list",
        config(targets={"spe1": target(maintenance=maint())}),
        [f"{T}.maintenance: must be a list"],
    ),
    ("empty file", "", ["file is empty (or contains only comments)"]),
    ("only comments", "# nothing here\n", ["file is empty (or contains only comments)"]),
    (
        "YAML syntax error names line and column",
        "targets:\n  spe1:\n    url: https://x\n   username: a\n",
        [
            "YAML syntax error at line 4, column 4: "
            "expected <block end>, but found '<block mapping start>'"
        ],
    ),
    (
        "duplicate key",
        "targets:\n  spe1:\n    url: https://a\n    url: https://b\n",
        ["YAML syntax error at line 4, column 5: duplicate key 'url'"],
    ),
    (
        "non-mapping top level",
        "- spe1\n- spe2\n",
        ["top level must be a mapping with keys web, log, defaults and targets, not a list"],
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_bad_config_message(write, tmp_path: Path, data: Any, expected: list[str]) -> None:
    write("pw.txt", "secret\n")
    write("empty.txt", "\n")
    write("ca.pem", "-----BEGIN CERTIFICATE-----\n")
    text = data if isinstance(data, str) else yaml.safe_dump(data)
    path = write("config.yml", text)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.errors == [line.replace("{dir}", str(tmp_path)) for line in expected]
    assert str(caught.value).splitlines() == [f"{path}: {line}" for line in caught.value.errors]


def test_table_is_big_enough() -> None:
    assert len(CASES) >= 20


def test_pydantic_wording_never_leaks(write) -> None:
    bad = config(
        web={"listen_address": 1, "max_request_bytes": "x", "extra": 1},
        log={"level": None},
        targets={"spe1": target(tls=[], timeouts={"read": True}, password=["p"], username=7)},
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write("config.yml", yaml.safe_dump(bad)))
    text = str(caught.value)
    for pydantic_phrase in ("Input should", "Extra inputs", "Value error", "Field required"):
        assert pydantic_phrase not in text
    assert len(caught.value.errors) >= 6
