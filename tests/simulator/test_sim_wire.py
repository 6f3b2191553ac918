"""Wire-level behaviour: headers, BOM, envelope, auth, HTTP status codes, argument binding."""

from __future__ import annotations

import base64
import http.client
import json
import ssl

import requests

from .conftest import PASSWORD, USER, SimApi, decode

ENVELOPE_KEYS = {
    "error",
    "token",
    "statusVersion",
    "statusCode",
    "percentProgress",
    "statusText",
    "result",
    "logOutput",
}


def _raw_connection(api: SimApi) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=api.sim.ca_file)
    return http.client.HTTPSConnection("127.0.0.1", api.sim.port, context=ctx, timeout=10)


def _auth_header() -> str:
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def test_response_has_bom_spe_headers_and_envelope(api: SimApi) -> None:
    resp = api.post("/api/invoke/GetEnvironmentInfo")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Server"] == "Microsoft-HTTPAPI/2.0"
    assert resp.headers["Cache-Control"].startswith("no-cache,private,no-store")
    assert resp.headers["Pragma"] == "no-cache"
    assert "Expires" in resp.headers
    assert resp.content[:3] == b"\xef\xbb\xbf"
    env = decode(resp)
    assert set(env) == ENVELOPE_KEYS
    assert env["statusCode"] == "succeeded" and env["error"] is None and env["token"] is None
    assert isinstance(env["statusVersion"], int)
    assert env["result"]["userName"] == USER  # the calling user


def test_missing_or_wrong_credentials_give_401(api: SimApi) -> None:
    assert api.post("/api/invoke/Ping", auth=None).status_code == 401
    assert api.post("/api/invoke/Ping", auth=(USER, "wrong")).status_code == 401
    assert api.post("/api/get-metadata", auth=None).status_code == 401


def test_post_without_content_length_gives_411(api: SimApi) -> None:
    conn = _raw_connection(api)
    conn.putrequest("POST", "/api/invoke/Ping")
    conn.putheader("Authorization", _auth_header())
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 411
    conn.close()


def test_empty_post_with_content_length_zero_works(api: SimApi) -> None:
    conn = _raw_connection(api)
    conn.request(
        "POST",
        "/api/invoke/Ping",
        body=b"",
        headers={"Authorization": _auth_header(), "Content-Length": "0"},
    )
    resp = conn.getresponse()
    assert resp.status == 200
    assert json.loads(resp.read().decode("utf-8-sig"))["statusCode"] == "succeeded"
    conn.close()


def test_keep_alive_serves_several_requests_on_one_connection(api: SimApi) -> None:
    conn = _raw_connection(api)
    for _ in range(3):
        conn.request(
            "POST", "/api/invoke/Ping", body=b"", headers={"Authorization": _auth_header()}
        )
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
    conn.close()


def test_get_metadata_is_a_bare_array_with_bom_via_post_and_get(api: SimApi) -> None:
    for resp in (api.post("/api/get-metadata"), api.get("/api/get-metadata")):
        assert resp.status_code == 200
        data = decode(resp)
        assert isinstance(data, list)
        by_name = {f["name"]: f for f in data}
        assert "get-status" not in by_name and "cancel-async" not in by_name
        args = {a["name"]: a for a in by_name["GetWorkerResults"]["args"]}
        assert args["timeZoneID"] == {"name": "timeZoneID", "type": "string", "nullable": False}
        assert args["profileID"]["nullable"] is True and args["profileID"]["type"] == "number"
        assert "timeZoneId" in {a["name"] for a in by_name["GetJobResults"]["args"]}


def test_unknown_function_fails_in_an_envelope(api: SimApi) -> None:
    assert api.error("NoSuchFunction") == "Unknown API function: NoSuchFunction"


def test_missing_mandatory_argument_fails_naming_it(api: SimApi) -> None:
    assert "instanceID" in api.error("GetStores")


def test_json_body_is_not_understood(api: SimApi) -> None:
    resp = api.post("/api/invoke/GetStores", json={"instanceID": "acme"})
    env = decode(resp)
    assert env["statusCode"] == "failed" and "instanceID" in env["error"]["message"]


def test_booleans_must_be_lower_case(api: SimApi) -> None:
    assert api.result("GetStores", instanceID="acme", includeSize="true")
    for spelling in ("True", "TRUE", "1", "yes"):
        assert "Boolean" in api.error("GetStores", instanceID="acme", includeSize=spelling)


def test_unknown_path_and_wrong_method(api: SimApi) -> None:
    assert api.post("/nothing-here").status_code == 404
    assert api.get("/api/invoke/Ping").status_code == 405


def test_instance_ids_in_results_keep_their_case(api: SimApi) -> None:
    assert api.result("GetInstanceConfiguration", instanceID="ACME")["instanceID"] == "acme"


def test_tls_rejects_clients_that_do_not_trust_the_cert(api: SimApi) -> None:
    try:
        requests.post(api.sim.url + "/api/invoke/Ping", verify=True, timeout=5)
    except requests.exceptions.SSLError:
        return
    raise AssertionError("a self-signed certificate must not verify against system CAs")
