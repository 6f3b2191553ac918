"""The exporter's own endpoint: TLS, basic auth, request limits, web config errors."""

from __future__ import annotations

import base64
import socket

import bcrypt
import pytest
import requests
import trustme

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.webconfig import WebConfigError, load_web_config

HASH = bcrypt.hashpw(b"scrape-secret", bcrypt.gensalt(4)).decode()


def _config(max_request_bytes=8192):
    return parse_config(
        {
            "web": {"listen_address": "127.0.0.1:0", "max_request_bytes": max_request_bytes},
            # Never polled in these tests: the endpoint is what is under test.
            "targets": {"spe1": {"url": "https://127.0.0.1:1", "username": "u", "password": "p"}},
        }
    )


@pytest.fixture
def tls_files(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    return tmp_path, ca


def _serve(web_config=None, **kwargs):
    exp = Exporter(_config(**kwargs), web_config=web_config)
    exp.start(schedule=False)
    return exp


def test_tls_and_basic_auth(tls_files):
    folder, _ = tls_files
    web = folder / "web.yml"
    web.write_text(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n"
        f"basic_auth_users:\n  prometheus: '{HASH}'\n"
    )
    exp = _serve(load_web_config(web))
    try:
        url = f"https://127.0.0.1:{exp.web.address[1]}/metrics"
        ca = str(folder / "ca.pem")
        assert requests.get(url, verify=ca, timeout=5).status_code == 401
        r = requests.get(url, verify=ca, auth=("prometheus", "wrong"), timeout=5)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"].startswith("Basic")
        for _ in range(2):  # the second check is served from the verification cache
            r = requests.get(url, verify=ca, auth=("prometheus", "scrape-secret"), timeout=5)
            assert r.status_code == 200 and "mailstore_spe_up" in r.text
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url, timeout=5)  # not trusted without the CA
        # plain HTTP to the TLS port gets nothing useful, and the server keeps serving
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url.replace("https", "http"), timeout=5)
        r = requests.get(url, verify=ca, auth=("prometheus", "scrape-secret"), timeout=5)
        assert r.status_code == 200
    finally:
        exp.stop()


def test_client_certificates_required(tls_files):
    folder, ca = tls_files
    client = ca.issue_cert("prometheus@example")
    client.private_key_and_cert_chain_pem.write_to_path(str(folder / "client.pem"))
    web = folder / "web.yml"
    web.write_text(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n"
    )
    exp = _serve(load_web_config(web))
    try:
        url = f"https://127.0.0.1:{exp.web.address[1]}/-/healthy"
        ca_file = str(folder / "ca.pem")
        with pytest.raises(requests.exceptions.RequestException):
            requests.get(url, verify=ca_file, timeout=5)
        r = requests.get(url, verify=ca_file, cert=str(folder / "client.pem"), timeout=5)
        assert r.status_code == 200
    finally:
        exp.stop()


def test_request_size_limits():
    exp = _serve(max_request_bytes=1024)
    try:
        base = f"http://127.0.0.1:{exp.web.address[1]}"
        r = requests.get(base + "/metrics", headers={"X-Big": "x" * 2000}, timeout=5)
        assert r.status_code == 431
        r = requests.post(base + "/metrics", data=b"x" * 5000, timeout=5)
        assert r.status_code == 413
        assert requests.get(base + "/metrics", timeout=5).status_code == 200
    finally:
        exp.stop()


def test_a_silent_client_does_not_block_others(tls_files):
    folder, _ = tls_files
    web = folder / "web.yml"
    web.write_text("tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n")
    exp = _serve(load_web_config(web))
    try:
        port = exp.web.address[1]
        with socket.create_connection(("127.0.0.1", port)):  # never sends a TLS hello
            r = requests.get(
                f"https://127.0.0.1:{port}/-/healthy", verify=str(folder / "ca.pem"), timeout=5
            )
            assert r.status_code == 200
    finally:
        exp.stop()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tls_server_config:\n  cert_file: nope.pem\n  key_file: nope.pem\n",
         "tls_server_config.cert_file: file not found"),
        ("basic_auth_users:\n  alice: plaintext\n",
         "basic_auth_users.alice: must be a bcrypt hash ($2y$..., $2b$...)"),
        ("tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n"
         "  client_auth_type: Sometimes\n", "tls_server_config.client_auth_type: must be one of"),
        ("tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n"
         "  client_auth_type: RequireAndVerifyClientCert\n",
         "tls_server_config.client_ca_file: required with client_auth_type"),
        ("tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n"
         "  min_version: TLS99\n", "tls_server_config.min_version: must be one of"),
        ("basic_auth_user:\n  alice: x\n", "unknown key 'basic_auth_user'"),
    ],
)
def test_web_config_errors_name_the_key(tls_files, text, message):
    folder, _ = tls_files
    web = folder / "web.yml"
    web.write_text(text)
    with pytest.raises(WebConfigError) as err:
        load_web_config(web)
    assert message in str(err.value)
    assert str(err.value).startswith(str(web))


def test_basic_auth_rejects_malformed_headers():
    from exporter.webconfig import BasicAuth

    auth = BasicAuth({"prometheus": HASH.encode()})
    assert not auth.check(None)
    assert not auth.check("Bearer abc")
    assert not auth.check("Basic !!!notbase64")
    assert not auth.check("Basic " + base64.b64encode(b"no-colon").decode())
    assert not auth.check("Basic " + base64.b64encode(b"other:scrape-secret").decode())
    assert auth.check("Basic " + base64.b64encode(b"prometheus:scrape-secret").decode())
