"""SPEClient against the project's SPE simulator over real HTTPS."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from spe_testkit import PASSWORD, USERNAME

from exporter.spe.client import SPEClient
from exporter.spe.errors import (
    SPEAPIError,
    SPEAsyncTimeoutError,
    SPEAuthError,
    SPEConnectionError,
    SPEError,
    SPEFunctionNotAllowedError,
    SPEHTTPError,
    SPEInvalidResponseError,
    SPEPollingStoppedError,
    SPETimeoutError,
    SPETLSError,
)
from exporter.spe.observer import ClientObserver


class Recorder(ClientObserver):
    """A ClientObserver that records every event (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple] = []

    def _add(self, *event):
        with self.lock:
            self.events.append(event)

    def request_finished(self, function, duration, error):
        self._add("request", function, duration, error)

    def async_started(self, function, token):
        self._add("started", function, token)

    def async_progress(self, function, token, percent, text):
        self._add("progress", function, token, percent, text)

    def async_finished(self, function, token, result, duration, error):
        self._add("finished", function, token, result, duration, error)

    def of(self, kind):
        return [e for e in self.events if e[0] == kind]


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def client(sim, recorder):
    c = SPEClient(
        sim.url,
        USERNAME,
        PASSWORD,
        ca_file=sim.ca_file,
        observer=recorder,
        read_timeout=5,
        status_poll_ms=200,
    )
    yield c
    c.close()


def test_environment_info_through_bom_body(client, recorder):
    info = client.call("GetEnvironmentInfo")
    assert isinstance(info, dict) and info["version"]
    ((_, function, duration, error),) = recorder.of("request")
    assert (function, error) == ("GetEnvironmentInfo", None) and duration > 0


def test_get_metadata_is_a_bare_array(client):
    names = {f["name"] for f in client.get_metadata()}
    assert "GetEnvironmentInfo" in names


def test_wrong_password_is_auth_error(sim, client):
    sim.state.set_credentials(USERNAME, "another-password")
    with pytest.raises(SPEAuthError, match="check user name and API password"):
        client.call("GetEnvironmentInfo")


def test_unknown_token_on_get_status_is_404(client):
    with pytest.raises(SPEHTTPError, match="unknown or expired token") as info:
        client.get_status("sa" + "0" * 32, -1, 100)
    assert info.value.reason == "http_404"


def test_5xx_fault(sim, client):
    sim.state.set_fault("GetEnvironmentInfo", "http_status", status=503, body="down for repair")
    with pytest.raises(SPEHTTPError, match="HTTP 503") as info:
        client.call("GetEnvironmentInfo")
    assert info.value.reason == "http_5xx"
    assert "down for repair" in str(info.value)


def test_invalid_json_fault(sim, client):
    sim.state.set_fault("GetEnvironmentInfo", "invalid_json")
    with pytest.raises(SPEInvalidResponseError, match=r"not valid JSON.*Service Unavailable"):
        client.call("GetEnvironmentInfo")


def test_truncated_body_fault(sim, client):
    sim.state.set_fault("GetEnvironmentInfo", "truncated")
    with pytest.raises(SPEInvalidResponseError):
        client.call("GetEnvironmentInfo")
    sim.state.set_fault("GetEnvironmentInfo", "truncated", content_length="full")
    with pytest.raises(SPEConnectionError):
        client.call("GetEnvironmentInfo")


def test_dropped_connection_fault(sim, client):
    sim.state.set_fault("GetEnvironmentInfo", "drop_connection")
    with pytest.raises(SPEConnectionError):
        client.call("GetEnvironmentInfo")


def test_api_error_fault(sim, client, recorder):
    sim.state.set_fault("GetEnvironmentInfo", "api_error", message="Boom.", details="trace")
    with pytest.raises(SPEAPIError) as info:
        client.call("GetEnvironmentInfo")
    assert (info.value.message, info.value.details) == ("Boom.", "trace")
    assert recorder.of("request")[0][3] is info.value


def test_hang_fault_is_a_read_timeout(sim):
    sim.state.set_fault("GetEnvironmentInfo", "hang", seconds=3)
    client = SPEClient(sim.url, USERNAME, PASSWORD, ca_file=sim.ca_file, read_timeout=0.4)
    with pytest.raises(SPETimeoutError, match=r"read timeout of 0\.4 s"):
        client.call("GetEnvironmentInfo")


def test_tls_failure_without_ca_file(sim):
    client = SPEClient(sim.url, USERNAME, PASSWORD)
    with pytest.raises(SPETLSError, match="ca_file"):
        client.call("GetEnvironmentInfo")


@pytest.mark.parametrize("attr", ["thumbprint_sha1", "thumbprint_sha256"])
def test_thumbprint_pin_of_the_simulator(sim, attr):
    client = SPEClient(sim.url, USERNAME, PASSWORD, thumbprint=getattr(sim, attr))
    assert client.call("GetEnvironmentInfo")
    wrong = SPEClient(sim.url, USERNAME, PASSWORD, thumbprint="0" * len(getattr(sim, attr)))
    with pytest.raises(SPETLSError, match="does not match the pinned"):
        wrong.call("GetEnvironmentInfo")


def test_long_running_success_reports_progress(sim, client, recorder, monkeypatch):
    # The vendor shape (default) never reports progress; the progressing variant does.
    monkeypatch.setattr(sim.state.scenario.behaviour, "long_running", "progressing")
    sim.state.set_fault("GetEnvironmentInfo", "long_running", steps=3, step_seconds=0.1)
    seen = []
    result = client.call("GetEnvironmentInfo", on_progress=seen.append)
    assert result["version"]
    versions = [e.status_version for e in seen]
    assert len(versions) >= 3 and versions == sorted(set(versions))
    percents = [e[3] for e in recorder.of("progress")]
    assert percents[0] == 0 and any(p and p > 0 for p in percents)
    ((_, _, token, outcome, _, _),) = recorder.of("finished")
    assert outcome == "succeeded" and token.startswith("sa")
    # One request event for the whole call; the get-status polls are not requests.
    assert [e[1] for e in recorder.of("request")] == ["GetEnvironmentInfo"]


def test_long_running_failure(sim, client, recorder):
    sim.state.set_fault(
        "GetEnvironmentInfo",
        "long_running",
        steps=2,
        step_seconds=0.05,
        outcome="failed",
        error_message="Verification failed.",
    )
    with pytest.raises(SPEAPIError, match="Verification failed"):
        client.call("GetEnvironmentInfo")
    assert recorder.of("finished")[0][3] == "failed"
    # SPE's message, then the last lines of the task's logOutput.
    assert recorder.of("finished")[0][5].startswith(
        "Verification failed. Last log lines: Starting GetEnvironmentInfo... | "
        "Creating a list of items to process..."
    )


def test_long_running_failure_in_the_progressing_shape_has_its_log_tail(
    sim, client, recorder, monkeypatch
):
    monkeypatch.setattr(sim.state.scenario.behaviour, "long_running", "progressing")
    sim.state.set_fault("GetEnvironmentInfo", "long_running", steps=1, step_seconds=0.05,
                        outcome="failed", error_message="Verification failed.")
    with pytest.raises(SPEAPIError, match="Verification failed"):
        client.call("GetEnvironmentInfo")
    assert recorder.of("finished")[0][5] == (
        "Verification failed. Last log lines: Starting GetEnvironmentInfo..."
    )


def test_long_running_timeout_cancels_on_the_server(sim, client, recorder):
    sim.state.set_fault(
        "GetEnvironmentInfo", "long_running", steps=2, step_seconds=0.05, never_finish=True
    )
    started = time.monotonic()
    with pytest.raises(SPEAsyncTimeoutError) as info:
        client.call("GetEnvironmentInfo", deadline=0.6)
    assert time.monotonic() - started < 2.0
    assert recorder.of("finished")[0][3] == "timeout"
    # The server saw cancel-async: the task now reports its cancelled end state.
    probe = SPEClient(sim.url, USERNAME, PASSWORD, ca_file=sim.ca_file)
    assert probe.get_status(info.value.token, -1, 0).status_code == "cancelled"


def test_close_stops_polling_promptly(sim, client, recorder):
    sim.state.set_fault(
        "GetEnvironmentInfo", "long_running", steps=2, step_seconds=0.05, never_finish=True
    )
    threading.Timer(0.5, client.close).start()
    started = time.monotonic()
    with pytest.raises(SPEPollingStoppedError):
        client.call("GetEnvironmentInfo", deadline=30)
    assert time.monotonic() - started < 1.5


def test_credentials_never_in_logs_errors_or_repr(sim, client, caplog):
    caplog.set_level(logging.DEBUG)
    errors = []
    for kind, params in [("http_status", {"status": 500}), ("api_error", {}), ("invalid_json", {})]:
        sim.state.set_fault("GetEnvironmentInfo", kind, **params)
        with pytest.raises(SPEError) as info:
            client.call("GetEnvironmentInfo")
        errors.append(info.value)
        sim.state.clear_faults()
    sim.state.set_credentials(USERNAME, "x")
    with pytest.raises(SPEAuthError) as info:
        client.call("GetEnvironmentInfo")
    errors.append(info.value)
    assert "GetEnvironmentInfo" in caplog.text  # the debug log did record the requests
    for text in [caplog.text, repr(client), *map(str, errors), *map(repr, errors)]:
        assert PASSWORD not in text


def test_concurrent_use_from_16_threads(sim, client, recorder):
    def one(_i):
        return client.call("GetEnvironmentInfo")["version"]

    with ThreadPoolExecutor(16) as pool:
        versions = list(pool.map(one, range(64)))
    assert len(set(versions)) == 1
    assert len(recorder.of("request")) == 64
    assert all(e[3] is None for e in recorder.of("request"))


def test_allow_listed_client_may_poll_its_own_long_running_task(sim, recorder):
    sim.state.set_fault("GetEnvironmentInfo", "long_running", steps=2, step_seconds=0.05)
    client = SPEClient(
        sim.url,
        USERNAME,
        PASSWORD,
        ca_file=sim.ca_file,
        observer=recorder,
        status_poll_ms=200,
        allowed_functions={"GetEnvironmentInfo"},
    )
    statuses = []

    # get-status from inside the operation: the token is this client's own, so allowed.
    def on_progress(env):
        if env.token:
            statuses.append(client.get_status(env.token, -1, 0).status_code)

    assert client.call("GetEnvironmentInfo", on_progress=on_progress)["version"]
    assert statuses and set(statuses) <= {"running", "succeeded"}
    # Once finished the token is forgotten: polling it again is refused.
    token = recorder.of("finished")[0][2]
    with pytest.raises(SPEFunctionNotAllowedError, match="not issued to this client"):
        client.get_status(token, -1, 0)
