"""The exporter holds SPE administrator credentials: they must never leak, and the
exporter must not be able to call anything but its read-only functions."""

from __future__ import annotations

import logging

import pytest
import requests

from exporter.collectors import READ_ONLY_FUNCTIONS
from exporter.spe.errors import SPEFunctionNotAllowedError

from .helpers import exporter_for, scrape, serving_exporter

SECRET = "Sup3r-Secret-Passw0rd"


def test_password_absent_from_logs_metrics_landing_page_and_errors(simulator, caplog):
    with serving_exporter(simulator, password=SECRET) as exp:  # wrong password: every call fails
        with caplog.at_level(logging.DEBUG):
            exp.poller.run_all_once()
        body = scrape(exp)
        landing = requests.get(f"http://127.0.0.1:{exp.web.address[1]}/", timeout=5).text
        errors = [s.error or "" for s in exp.health.snapshot()["simulator"].values()]
        runtime = exp.poller.targets["simulator"]
        for text in (caplog.text, body, landing, repr(runtime.client), *errors):
            assert SECRET not in text
        assert any("401" in e or "API password" in e for e in errors)


@pytest.mark.parametrize("function", ["DeleteInstances", "SetUserPassword", "StopInstances",
                                      "CreateSystemAdministratorAPIPassword", "VerifyStores"])
def test_the_exporter_client_refuses_anything_but_its_read_only_functions(simulator, function):
    exp = exporter_for(simulator)
    try:
        client = exp.poller.targets["simulator"].client
        with pytest.raises(SPEFunctionNotAllowedError):
            client.call(function, instanceFilter="*")
        assert function not in READ_ONLY_FUNCTIONS
    finally:
        exp.stop()
