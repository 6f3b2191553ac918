"""What SPEClient puts on the wire and how it maps answers, against a scripted HTTPS server."""

from __future__ import annotations

import base64
import json
import logging
import urllib.parse
from urllib.parse import parse_qsl

import pytest
from spe_testkit import PASSWORD, USERNAME, Reply, envelope_bytes

from exporter.spe.client import SPEClient
from exporter.spe.errors import (
    SPEAPIError,
    SPEAuthError,
    SPEFunctionNotAllowedError,
    SPEHTTPError,
    SPEInvalidResponseError,
)
from exporter.spe.observer import ClientObserver


class RecordingObserver(ClientObserver):
    def __init__(self) -> None:
        self.requests: list[tuple[str, float, object]] = []

    def request_finished(self, function, duration, error):
        self.requests.append((function, duration, error))


def make_client(server, **kwargs) -> SPEClient:
    kwargs.setdefault("ca_file", server.ca_file)
    return SPEClient(server.url, USERNAME, PASSWORD, **kwargs)


@pytest.mark.parametrize("bom", [True, False], ids=["bom", "no-bom"])
def test_call_returns_result_with_and_without_bom(scripted, bom):
    scripted.respond(Reply(body=envelope_bytes({"version": "25.3.1"}, bom=bom)))
    with make_client(scripted) as client:
        assert client.call("GetEnvironmentInfo") == {"version": "25.3.1"}


def test_empty_post_sends_content_length_zero_and_basic_auth(scripted):
    with make_client(scripted) as client:
        client.call("GetEnvironmentInfo")
    (seen,) = scripted.requests
    assert seen.path == "/api/invoke/GetEnvironmentInfo"
    assert seen.headers["Content-Length"] == "0"
    expected_auth = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    assert seen.headers["Authorization"] == f"Basic {expected_auth}"


def test_arguments_are_form_encoded_with_spe_conventions(scripted):
    with make_client(scripted) as client:
        client.call("GetStores", instanceID="acme", includeSize=True, profileID=None)
    (seen,) = scripted.requests
    assert seen.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert seen.headers["Content-Length"] == str(len(seen.body))
    assert dict(parse_qsl(seen.body.decode())) == {"instanceID": "acme", "includeSize": "true"}


def test_low_level_functions_are_under_api_not_invoke(scripted):
    scripted.respond(Reply(body=b"\xef\xbb\xbf" + json.dumps([{"name": "Ping"}]).encode()))
    with make_client(scripted) as client:
        assert client.get_metadata() == [{"name": "Ping"}]
        scripted.respond(Reply(body=envelope_bytes(None, status="running", token="t1")))
        client.get_status("t1", 3, 250)
        client.cancel_async("t1")
    assert [r.path for r in scripted.requests] == [
        "/api/get-metadata",
        "/api/get-status",
        "/api/cancel-async",
    ]
    assert dict(parse_qsl(scripted.requests[1].body.decode())) == {
        "token": "t1",
        "lastKnownStatusVersion": "3",
        "millisecondsTimeout": "250",
    }


def test_api_error_envelope_raises_with_message_and_details(scripted):
    scripted.respond(
        Reply(
            body=envelope_bytes(
                None,
                status="failed",
                error={"message": "Instance 'x' not found.", "details": "trace..."},
            )
        )
    )
    with make_client(scripted) as client, pytest.raises(SPEAPIError) as info:
        client.call("GetStores", instanceID="x")
    assert info.value.reason == "api_error"
    assert str(info.value) == "GetStores: Instance 'x' not found."
    assert info.value.details == "trace..."


@pytest.mark.parametrize(
    ("status", "error_type", "reason", "phrase"),
    [
        (401, SPEAuthError, "http_401", "with MFA on, the API password is required"),
        (403, SPEHTTPError, "http_403", "system administrator"),
        (404, SPEHTTPError, "http_404", "may not exist on this SPE version"),
        (411, SPEHTTPError, "http_4xx", "HTTP 411"),
        (503, SPEHTTPError, "http_5xx", "HTTP 503"),
    ],
)
def test_http_status_mapping(scripted, status, error_type, reason, phrase):
    scripted.respond(Reply(status=status, body=b"Service Unavailable: backend down"))
    with make_client(scripted) as client, pytest.raises(error_type) as info:
        client.call("GetEnvironmentInfo")
    assert info.value.reason == reason
    assert phrase in str(info.value)
    assert PASSWORD not in str(info.value)


def test_5xx_message_has_a_short_body_excerpt(scripted):
    scripted.respond(Reply(status=500, body=b"Internal failure XYZ " + b"." * 5000))
    with make_client(scripted) as client, pytest.raises(SPEHTTPError) as info:
        client.call("GetEnvironmentInfo")
    assert "Internal failure XYZ" in str(info.value)
    assert len(str(info.value)) < 400


def test_404_on_get_status_means_unknown_token(scripted):
    scripted.respond(Reply(status=404, body=b""))
    with make_client(scripted) as client, pytest.raises(SPEHTTPError) as info:
        client.get_status("nope", -1, 100)
    assert "unknown or expired token" in str(info.value)


def test_invalid_json_is_invalid_response_naming_function(scripted):
    scripted.respond(Reply(body=b"<html>proxy error</html>", content_type="text/html"))
    with make_client(scripted) as client, pytest.raises(SPEInvalidResponseError) as info:
        client.call("GetInstances", instanceFilter="*")
    assert str(info.value).startswith("GetInstances: response body is not valid JSON")
    assert "proxy error" in str(info.value)


def test_allow_list_refusal_sends_nothing_and_is_reported(scripted):
    observer = RecordingObserver()
    with make_client(scripted, allowed_functions={"GetStores"}, observer=observer) as client:
        with pytest.raises(SPEFunctionNotAllowedError, match="nothing was sent"):
            client.call("DeleteInstances", instanceFilter="*")
        with pytest.raises(SPEFunctionNotAllowedError):
            client.get_metadata()
        # get-status/cancel-async only for tokens this client received.
        with pytest.raises(SPEFunctionNotAllowedError, match="not issued to this client"):
            client.cancel_async("someone-elses-token")
        with pytest.raises(SPEFunctionNotAllowedError):
            client.get_status("someone-elses-token", -1, 100)
        client.call("GetStores", instanceID="acme")
    assert [r.path for r in scripted.requests] == ["/api/invoke/GetStores"]
    assert [(f, type(e).__name__) for f, _, e in observer.requests] == [
        ("DeleteInstances", "SPEFunctionNotAllowedError"),
        ("get-metadata", "SPEFunctionNotAllowedError"),
        ("cancel-async", "SPEFunctionNotAllowedError"),
        ("get-status", "SPEFunctionNotAllowedError"),
        ("GetStores", "NoneType"),
    ]


def test_observer_exception_never_breaks_a_call(scripted, caplog):
    class Broken(ClientObserver):
        def request_finished(self, *args):
            raise RuntimeError("observer bug")

    with make_client(scripted, observer=Broken()) as client:
        assert client.call("Ping") == {"ok": True}
    assert "observer request_finished raised" in caplog.text


def test_debug_log_per_request_without_credentials(scripted, caplog):
    caplog.set_level(logging.DEBUG)
    scripted.respond(Reply(status=401, body=b"denied"))
    client = make_client(scripted)
    with pytest.raises(SPEAuthError) as info:
        client.call("GetEnvironmentInfo")
    client.close()
    assert "GetEnvironmentInfo -> 401 (http_401)" in caplog.text
    basic = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    for text in (caplog.text, str(info.value), repr(info.value), repr(client)):
        assert PASSWORD not in text
        assert basic not in text
    assert repr(client) == f"SPEClient(base_url={scripted.url!r}, username={USERNAME!r})"


def test_password_echoed_by_a_server_is_scrubbed(scripted):
    scripted.respond(Reply(status=500, body=f"bad password {PASSWORD}".encode()))
    with make_client(scripted) as client, pytest.raises(SPEHTTPError) as info:
        client.call("Ping")
    assert PASSWORD not in str(info.value)
    assert "***" in str(info.value)


def test_base_url_with_credentials_is_rejected_without_echoing_them():
    with pytest.raises(ValueError) as info:
        SPEClient("https://admin:hunter22@spe:8474", "u", "p")
    assert "hunter22" not in str(info.value)


def test_unknown_final_status_is_an_api_error_with_that_status(scripted):
    scripted.respond(Reply(body=envelope_bytes(None, status="cancelled")))
    with make_client(scripted) as client, pytest.raises(SPEAPIError) as info:
        client.call("Ping")
    assert info.value.status_code == "cancelled"


def test_empty_allow_list_allows_nothing(scripted):
    with make_client(scripted, allowed_functions=set()) as client:
        with pytest.raises(SPEFunctionNotAllowedError):
            client.call("Ping")
    assert scripted.requests == []


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_not_followed_and_says_where_it_pointed(scripted, status):
    # Following it would send the credentials to whatever the Location names.
    scripted.respond(Reply(status=status, body=b"", headers={"Location": "https://evil.example/x"}))
    with make_client(scripted) as client, pytest.raises(SPEHTTPError) as info:
        client.call("GetEnvironmentInfo")
    assert len(scripted.requests) == 1
    assert info.value.status == status
    assert info.value.reason == "http_4xx"
    assert "https://evil.example/x" in str(info.value)
    assert "not followed" in str(info.value)


def test_request_head_and_body_arrive_together(scripted):
    with make_client(scripted) as client:
        client.call("GetStores", instanceID="acme", includeSize=True)
        client.call("GetEnvironmentInfo")
    stores, env = scripted.requests
    assert dict(parse_qsl(stores.body.decode())) == {"instanceID": "acme", "includeSize": "true"}
    assert env.headers["Content-Length"] == "0" and env.body == b""



_BASIC = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()


@pytest.mark.parametrize(
    ("echo", "secret"),
    [
        (f"Authorization: Basic {_BASIC}", _BASIC),
        (f"Basic {_BASIC.rstrip('=')}", _BASIC.rstrip("=")),
        ("password=" + urllib.parse.quote_plus(PASSWORD), urllib.parse.quote_plus(PASSWORD)),
        ("p=" + urllib.parse.quote(PASSWORD, safe=""), urllib.parse.quote(PASSWORD, safe="")),
    ],
)
def test_credentials_echoed_encoded_are_scrubbed(scripted, echo, secret):
    """Issue 13 B8: an error page echoing the Authorization header or a URL-encoded
    password must not bring them to the status page or the logs."""
    scripted.respond(Reply(status=500, body=f"err {echo}".encode()))
    with make_client(scripted) as client, pytest.raises(SPEHTTPError) as info:
        client.call("Ping")
    assert secret not in str(info.value), str(info.value)
    assert "***" in str(info.value)
