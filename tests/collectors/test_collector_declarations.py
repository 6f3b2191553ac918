"""A collector is declared once, in its class; everything else follows from that.

Config keys and default intervals, the scheduler's jobs, the client's allow-list and the
README table (tests/test_readme.py) are derived from ``ALL_COLLECTORS``: these tests fail
when one of them stops following it.
"""

from __future__ import annotations

import pytest

from exporter.app import Exporter, build_client
from exporter.collectors import ALL_COLLECTORS, READ_ONLY_FUNCTIONS
from exporter.collectors.base import DECLARED, Collector
from exporter.collectors.perinstance import PerInstanceCollector
from exporter.config import COLLECTOR_DEFAULTS, CollectorsConfig, parse_config
from exporter.telemetry import Telemetry


def _config(**collectors):
    return parse_config(
        {
            "web": {"listen_address": "127.0.0.1:0"},
            "targets": {
                "spe1": {
                    # Nothing listens on port 1 of loopback: the runs fail fast, which is
                    # all these tests need.
                    "url": "https://127.0.0.1:1",
                    "username": "admin",
                    "password": "secret",
                    "timeouts": {"connect": "1s", "read": "1s"},
                    "collectors": collectors,
                }
            },
        }
    )


def _scheduled_jobs(config) -> set[str]:
    exp = Exporter(config)
    exp.start(serve=False)
    try:
        return {job.id for job in exp.poller._scheduler.get_jobs()}
    finally:
        exp.stop()


def test_every_declared_collector_is_scheduled():
    jobs = _scheduled_jobs(_config())
    assert {job for job in jobs if job.startswith("spe1/")} == {
        f"spe1/{name}" for name in DECLARED
    }
    assert set(ALL_COLLECTORS) == set(DECLARED)


def test_a_disabled_collector_is_not_scheduled():
    jobs = _scheduled_jobs(_config(stores={"enabled": False}))
    assert "spe1/stores" not in jobs and "spe1/users" in jobs


def test_config_keys_and_default_intervals_come_from_the_declarations():
    assert list(CollectorsConfig.model_fields) == list(ALL_COLLECTORS)
    assert COLLECTOR_DEFAULTS == {name: cls.interval for name, cls in ALL_COLLECTORS.items()}
    schedules = _config(jobs={"interval": "5m"}).targets["spe1"].collector_schedules()
    assert schedules["jobs"].interval_seconds == 300
    assert schedules["users"].interval_seconds == ALL_COLLECTORS["users"].interval


def test_display_order_is_server_wide_then_per_instance_by_name():
    names = list(ALL_COLLECTORS)
    server = [n for n in names if not ALL_COLLECTORS[n].per_instance]
    assert names == sorted(server) + sorted(n for n in names if n not in server)
    assert server == ["environment", "instances", "service"]


def test_allow_list_is_exactly_what_the_collectors_may_call():
    for name, cls in ALL_COLLECTORS.items():
        assert cls.per_instance == issubclass(cls, PerInstanceCollector), name
        # Nobody lists GetInstances by hand except the collector whose call it is.
        assert ("GetInstances" in cls.functions) == (name == "instances"), name
        expected = set(cls.functions) | ({"GetInstances"} if cls.per_instance else set())
        assert cls.allowed_functions == expected, name
    assert READ_ONLY_FUNCTIONS == frozenset().union(
        *(cls.allowed_functions for cls in ALL_COLLECTORS.values())
    )
    client = build_client("spe1", _config().targets["spe1"], Telemetry("spe1"))
    try:
        assert client.allowed_functions == set(READ_ONLY_FUNCTIONS)
    finally:
        client.close()


def test_an_incomplete_declaration_is_refused_at_import():
    with pytest.raises(TypeError, match="collector 'half' must declare interval"):

        class Half(PerInstanceCollector):
            name = "half"
            functions = ("GetHalf",)

    with pytest.raises(TypeError, match="collector 'stores' declared twice"):

        class Stores(Collector):
            __module__ = "exporter.collectors.another_stores"  # as if in the package
            name = "stores"
            interval = 60.0
            functions = ("GetStores",)

    assert "half" not in DECLARED and DECLARED["stores"] is ALL_COLLECTORS["stores"]


def test_a_collector_outside_the_package_is_not_run_by_the_exporter():
    class Elsewhere(PerInstanceCollector):
        name = "elsewhere"
        interval = 60.0
        functions = ("GetElsewhere",)

    assert Elsewhere.allowed_functions == {"GetElsewhere", "GetInstances"}
    assert "elsewhere" not in DECLARED
