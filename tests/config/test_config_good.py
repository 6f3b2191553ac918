"""Valid configs: defaults, overrides, substitution, normalisation, path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.config import (
    COLLECTOR_DEFAULTS,
    CollectorsConfig,
    demo_config,
    load_config,
    parse_config,
)

MINIMAL = """
targets:
  spe1:
    url: https://spe.example.com
    username: monitoring
    password: pw
"""


def test_minimal_config_gets_documented_defaults(write) -> None:
    config = load_config(write("config.yml", MINIMAL))

    assert config.web.listen_address == "0.0.0.0:9474"
    assert (config.web.host, config.web.port) == ("0.0.0.0", 9474)
    assert config.web.max_request_bytes == 8192
    assert (config.log.level, config.log.format) == ("info", "logfmt")
    spe1 = config.targets["spe1"]
    assert spe1.url == "https://spe.example.com:8474"
    assert spe1.password_value() == "pw"
    assert (spe1.timeouts.connect, spe1.timeouts.read, spe1.timeouts.async_deadline) == (
        5.0,
        30.0,
        600.0,
    )
    assert (spe1.instance_filter, spe1.concurrency) == ("*", 8)
    assert (spe1.tls.ca_file, spe1.tls.thumbprint, spe1.tls.insecure_skip_verify) == (
        None,
        None,
        False,
    )
    schedules = spe1.collector_schedules()
    assert list(schedules) == list(COLLECTOR_DEFAULTS)
    for name, interval in COLLECTOR_DEFAULTS.items():
        assert schedules[name].enabled
        assert schedules[name].interval_seconds == interval
        assert schedules[name].max_data_age_seconds == 3 * interval


def test_collector_defaults_match_design_and_schema() -> None:
    assert COLLECTOR_DEFAULTS == {
        "environment": 60, "service": 60, "instances": 60, "statistics": 300, "stores": 300,
        "process": 60, "profiles": 120, "jobs": 120, "users": 3600, "compliance": 3600,
        "credentials": 3600, "access": 300,
    }  # fmt: skip
    assert list(CollectorsConfig.model_fields) == list(COLLECTOR_DEFAULTS)


def test_defaults_merge_per_key_and_targets_override(write, ca_file: Path) -> None:
    config = load_config(
        write(
            "config.yml",
            """
            defaults:
              timeouts: {connect: 2s, read: 1m}
              tls: {ca_file: ca.pem}
              concurrency: 4
              max_data_age: 2h
              collectors:
                users: {enabled: false}
                stores: {interval: 10m}
            targets:
              spe1:
                url: https://a.example.com
                username: u
                password: pw
                timeouts: {read: 90s}
                collectors:
                  stores: {max_data_age: auto}
              spe2:
                url: https://b.example.com
                username: u
                password: pw
                concurrency: 16
                tls:
                collectors:
                  users: {enabled: true, interval: 1h30m}
            """,
        )
    )
    spe1, spe2 = config.targets["spe1"], config.targets["spe2"]
    assert (spe1.timeouts.connect, spe1.timeouts.read) == (2.0, 90.0)
    assert (spe2.timeouts.connect, spe2.timeouts.read) == (2.0, 60.0)
    assert spe1.tls.ca_file == spe2.tls.ca_file == ca_file  # "tls:" (empty) keeps defaults
    assert (spe1.concurrency, spe2.concurrency) == (4, 16)
    assert not spe1.collector_schedule("users").enabled
    users2 = spe2.collector_schedule("users")
    assert (users2.enabled, users2.interval_seconds, users2.max_data_age_seconds) == (
        True,
        5400.0,
        7200.0,
    )
    stores1 = spe1.collector_schedule("stores")
    assert (stores1.interval_seconds, stores1.max_data_age_seconds) == (600.0, 1800.0)
    assert spe2.collector_schedule("stores").max_data_age_seconds == 7200.0


def test_env_substitution_with_defaults_and_escape(write, monkeypatch) -> None:
    monkeypatch.setenv("SPE_PASSWORD", "from-env")
    monkeypatch.setenv("SPE_URL", "https://env.example.com")
    monkeypatch.setenv("SPE_CONCURRENCY", "")  # set but empty: ":-" still uses the default
    config = load_config(
        write(
            "config.yml",
            """
            targets:
              spe1:
                url: ${SPE_URL}
                username: user-${UNSET_VAR:-fallback}
                password: ${SPE_PASSWORD}
                concurrency: ${SPE_CONCURRENCY:-16}
                instance_filter: "$${literal}"
            """,
        )
    )
    spe1 = config.targets["spe1"]
    assert spe1.url == "https://env.example.com:8474"
    assert spe1.username == "user-fallback"
    assert spe1.password_value() == "from-env"
    assert spe1.concurrency == 16
    assert spe1.instance_filter == "${literal}"


def test_parse_config_takes_an_explicit_environment() -> None:
    data = {"targets": {"spe1": {"url": "https://a", "username": "u", "password": "${P}"}}}
    config = parse_config(data, environ={"P": "given"})
    assert config.targets["spe1"].password_value() == "given"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("secret\n", "secret"),
        ("secret\r\n", "secret"),
        ("secret\n\n", "secret"),
        ("  spaced secret \n", "  spaced secret "),
        ("\ufeffwith-bom\n", "with-bom"),
    ],
)
def test_password_file_content_without_trailing_newlines(write, content, expected) -> None:
    write("pw.txt", content)
    config = load_config(
        write(
            "config.yml",
            """
            targets:
              spe1: {url: "https://a", username: u, password_file: pw.txt}
            """,
        )
    )
    assert config.targets["spe1"].password_value() == expected


@pytest.mark.parametrize(
    "given",
    [
        "01:23:45:67:89:ab:cd:ef:01:23:45:67:89:AB:CD:EF:01:23:45:67",
        "01 23 45 67 89 ab cd ef 01 23 45 67 89 ab cd ef 01 23 45 67",
        "\u200e0123456789abcdef0123456789abcdef01234567",  # copied from the Windows dialog
    ],
)
def test_sha1_thumbprint_is_normalised(given: str) -> None:
    data = {"targets": {"spe1": {"url": "https://a", "username": "u", "password": "p",
                                 "tls": {"thumbprint": given}}}}  # fmt: skip
    tls = parse_config(data).targets["spe1"].tls
    assert tls.thumbprint == "0123456789ABCDEF0123456789ABCDEF01234567"


def test_sha256_thumbprint_is_accepted() -> None:
    data = {"targets": {"spe1": {"url": "https://a", "username": "u", "password": "p",
                                 "tls": {"thumbprint": "ab" * 32}}}}  # fmt: skip
    assert parse_config(data).targets["spe1"].tls.thumbprint == "AB" * 32


def test_relative_paths_resolve_against_the_config_directory(
    write, tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "secrets").mkdir()
    write("secrets/pw", "pw\n")
    ca = write("ca.pem", "-----BEGIN CERTIFICATE-----\n")
    config_path = write(
        "config.yml",
        """
        targets:
          spe1:
            url: https://a
            username: u
            password_file: secrets/pw
            tls: {ca_file: ca.pem}
        """,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    spe1 = load_config(config_path).targets["spe1"]

    assert spe1.password_file == tmp_path / "secrets" / "pw"
    assert spe1.tls.ca_file == ca
    assert spe1.password_value() == "pw"


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://SPE.example.com/", "https://spe.example.com:8474"),
        ("https://spe.example.com:443", "https://spe.example.com:443"),
        ("https://[2001:db8::1]", "https://[2001:db8::1]:8474"),
        ("http://10.0.0.5:8474", "http://10.0.0.5:8474"),
    ],
)
def test_url_normalisation(url: str, normalised: str) -> None:
    data = {"targets": {"spe1": {"url": url, "username": "u", "password": "p"}}}
    assert parse_config(data).targets["spe1"].url == normalised


@pytest.mark.parametrize(
    ("given", "address", "host", "port"),
    [
        ("[::]:9474", "[::]:9474", "::", 9474),
        ("127.0.0.1", "127.0.0.1:9474", "127.0.0.1", 9474),
        (":9100", "0.0.0.0:9100", "0.0.0.0", 9100),
        ("localhost:0", "localhost:0", "localhost", 0),
    ],
)
def test_listen_address_forms(given: str, address: str, host: str, port: int) -> None:
    data = {
        "web": {"listen_address": given},
        "targets": {"spe1": {"url": "https://a", "username": "u", "password": "p"}},
    }
    web = parse_config(data).web
    assert (web.listen_address, web.host, web.port) == (address, host, port)


def test_choices_are_case_insensitive_and_sections_may_be_empty(write) -> None:
    config = load_config(write("config.yml", "web:\nlog: {level: DEBUG, format: JSON}\n" + MINIMAL))
    assert (config.log.level, config.log.format) == ("debug", "json")
    assert config.web.port == 9474


def test_demo_config_builds_one_simulator_target(ca_file: Path) -> None:
    config = demo_config("https://127.0.0.1:40123", "admin", "${not-substituted}", ca_file)
    assert list(config.targets) == ["simulator"]
    target = config.targets["simulator"]
    assert target.url == "https://127.0.0.1:40123"
    assert target.password_value() == "${not-substituted}"
    assert target.tls.ca_file == ca_file


MAINTENANCE = """
defaults:
  maintenance:
    - function: RefreshAllStoreStatistics
      args: {instanceID: acme}
      schedule: {interval: 24h}
targets:
  spe1:
    url: https://a
    username: u
    password: p
    maintenance:
      - function: VerifyStore
        args: {instanceID: acme, id: "${STORE_ID}", includeIndexes: "true"}
        schedule: {cron: "0 3 * * 0", timezone: Europe/Berlin}
        deadline: 2h
  spe2: {url: "https://b", username: u, password: p}
"""


def test_maintenance_entries_are_normalised_and_defaults_are_replaced_per_target(
    write, monkeypatch
) -> None:
    monkeypatch.setenv("STORE_ID", "3")
    config = load_config(write("config.yml", MAINTENANCE))
    (verify,) = config.targets["spe1"].maintenance  # the target's own list replaces defaults
    # Text from ${VAR} becomes the argument's type; args keep the function's order.
    assert verify.args == {"instanceID": "acme", "id": 3, "includeIndexes": True}
    assert (verify.deadline, verify.cancel_on_shutdown) == (7200.0, False)
    assert verify.describe() == "VerifyStore(instanceID=acme, id=3, includeIndexes=true)"
    assert verify.schedule.describe() == "cron '0 3 * * 0' (Europe/Berlin)"
    (refresh,) = config.targets["spe2"].maintenance
    assert (refresh.function, refresh.schedule.interval, refresh.deadline) == (
        "RefreshAllStoreStatistics",
        86400.0,
        3600.0,
    )


def test_cron_weekday_numbers_follow_crontab_not_apscheduler() -> None:
    from datetime import UTC, datetime

    from exporter.config.cron import parse_crontab

    monday = datetime(2024, 1, 1, tzinfo=UTC)
    fire = {
        expr: parse_crontab(expr).get_next_fire_time(None, monday).strftime("%a %d")
        for expr in ("0 3 * * 0", "0 3 * * 7", "0 3 * * 5-7", "0 3 * * */3", "0 3 * * sat")
    }
    # APScheduler 3 alone would read 0 as Monday.
    assert fire == {
        "0 3 * * 0": "Sun 07",
        "0 3 * * 7": "Sun 07",
        "0 3 * * 5-7": "Fri 05",
        "0 3 * * */3": "Wed 03",
        "0 3 * * sat": "Sat 06",
    }
