"""Transport failures, timeouts and the TLS modes (CA file, pinning, insecure)."""

from __future__ import annotations

import logging
import os
import time
import warnings

import pytest
import trustme
from spe_testkit import PASSWORD, USERNAME, Reply

from exporter.spe.client import SPEClient
from exporter.spe.errors import SPEConnectionError, SPETimeoutError, SPETLSError


def test_connection_refused_names_host_port_and_likely_causes(closed_port):
    client = SPEClient(f"https://127.0.0.1:{closed_port}", USERNAME, PASSWORD)
    with pytest.raises(SPEConnectionError) as info:
        client.call("GetEnvironmentInfo")
    message = str(info.value)
    assert f"127.0.0.1:{closed_port}" in message
    assert "refused" in message and "SPE may be down" in message
    assert info.value.reason == "connection"


def test_dns_failure_says_so():
    client = SPEClient("https://spe.example.invalid:8474", USERNAME, PASSWORD)
    with pytest.raises(SPEConnectionError) as info:
        client.call("GetEnvironmentInfo")
    assert "spe.example.invalid:8474" in str(info.value)
    assert "DNS failure" in str(info.value)


def test_dropped_connection_is_a_connection_error(scripted):
    scripted.respond(Reply(drop=True))
    client = SPEClient(scripted.url, USERNAME, PASSWORD, ca_file=scripted.ca_file)
    with pytest.raises(SPEConnectionError, match="closed or reset"):
        client.call("Ping")


def test_read_timeout_names_the_timeout_and_its_value(scripted):
    scripted.respond(Reply(delay=1.0))
    client = SPEClient(scripted.url, USERNAME, PASSWORD, ca_file=scripted.ca_file, read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(SPETimeoutError) as info:
        client.call("GetStores", instanceID="acme")
    assert time.monotonic() - started < 0.9
    assert "read timeout of 0.3 s" in str(info.value)
    assert info.value.reason == "timeout"


def test_get_status_read_timeout_is_extended_by_the_long_poll(scripted):
    # The server holds the long-poll for 0.5 s; a 0.3 s read timeout alone would fire.
    scripted.respond(Reply(delay=0.5))
    client = SPEClient(scripted.url, USERNAME, PASSWORD, ca_file=scripted.ca_file, read_timeout=0.3)
    env = client.get_status("t", 1, 500)
    assert env.status_code == "succeeded"


def test_untrusted_certificate_is_a_tls_error_suggesting_ca_file_or_thumbprint(scripted):
    scripted.respond(Reply())
    client = SPEClient(scripted.url, USERNAME, PASSWORD)
    with pytest.raises(SPETLSError) as info:
        client.call("Ping")
    message = str(info.value)
    assert "verification failed" in message and "ca_file" in message and "thumbprint" in message
    assert info.value.reason == "tls"
    assert scripted.requests == []  # nothing (no credentials) went to the untrusted server


def test_ca_file_is_accepted(scripted):
    client = SPEClient(scripted.url, USERNAME, PASSWORD, ca_file=scripted.ca_file)
    assert client.call("Ping") == {"ok": True}


@pytest.mark.parametrize("kind", ["sha1", "sha1-colons", "sha256"])
def test_thumbprint_pin_trusts_a_certificate_without_ca(scripted, kind):
    pin = {
        "sha1": scripted.thumbprint_sha1,
        "sha1-colons": ":".join(
            scripted.thumbprint_sha1[i : i + 2].lower() for i in range(0, 40, 2)
        ),
        "sha256": scripted.thumbprint_sha256,
    }[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a pinned connection counts as verified: no warning
        client = SPEClient(scripted.url, USERNAME, PASSWORD, thumbprint=pin)
        assert client.call("Ping") == {"ok": True}


@pytest.mark.parametrize("length", [40, 64])
def test_wrong_pin_is_rejected_naming_expected_and_actual(scripted, length):
    wrong = "A" * length
    client = SPEClient(scripted.url, USERNAME, PASSWORD, thumbprint=wrong)
    with pytest.raises(SPETLSError) as info:
        client.call("Ping")
    actual = scripted.thumbprint_sha1 if length == 40 else scripted.thumbprint_sha256.upper()
    assert f"expected {wrong}" in str(info.value)
    assert f"presented {actual}" in str(info.value)
    assert scripted.requests == []


def test_insecure_mode_works_warns_once_and_silences_per_request_warnings(scripted, caplog):
    caplog.set_level(logging.WARNING, logger="exporter.spe")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = SPEClient(scripted.url, USERNAME, PASSWORD, insecure_skip_verify=True)
        for _ in range(3):
            assert client.call("Ping") == {"ok": True}
        client.close()
    insecure = [r for r in caplog.records if "verification is OFF" in r.getMessage()]
    assert len(insecure) == 1
    assert [w for w in caught if "Unverified HTTPS" in str(w.message)] == []


def test_requests_ca_bundle_env_does_not_override_explicit_settings(scripted, monkeypatch):
    # requests lets REQUESTS_CA_BUNDLE replace Session.verify; the client must not be fooled.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    assert SPEClient(scripted.url, USERNAME, PASSWORD, ca_file=scripted.ca_file).call("Ping")
    insecure = SPEClient(scripted.url, USERNAME, PASSWORD, insecure_skip_verify=True)
    assert insecure.call("Ping")


def test_pin_with_ca_file_checks_both(scripted, tmp_path):
    good = SPEClient(
        scripted.url,
        USERNAME,
        PASSWORD,
        ca_file=scripted.ca_file,
        thumbprint=scripted.thumbprint_sha256,
    )
    assert good.call("Ping") == {"ok": True}
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    untrusted_chain = SPEClient(
        scripted.url,
        USERNAME,
        PASSWORD,
        ca_file=str(other_ca),
        thumbprint=scripted.thumbprint_sha256,
    )
    with pytest.raises(SPETLSError, match="verification failed"):
        untrusted_chain.call("Ping")


def test_a_body_sent_one_byte_at_a_time_hits_the_wall_clock_deadline(scripted):
    """Issue 13 B3: every read succeeds within the read timeout, the call must still end
    after connect + read timeout (wall clock) with a timeout error."""
    import threading

    scripted.respond(Reply(drip=0.2))
    client = SPEClient(scripted.url, USERNAME, PASSWORD, ca_file=scripted.ca_file,
                       connect_timeout=0.5, read_timeout=0.5)
    outcome: list[BaseException | object] = []

    def call() -> None:
        try:
            outcome.append(client.call("GetStores", instanceID="acme"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome.append(exc)

    started = time.monotonic()
    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout=6)
    assert not worker.is_alive(), "the call was still running after 6 s"
    assert time.monotonic() - started < 2.5
    (error,) = outcome
    assert isinstance(error, SPETimeoutError), error
    assert "within 1 s (connect + read timeout, wall clock)" in str(error)
    assert error.reason == "timeout"



def test_ca_file_is_not_looked_up_on_every_call(sim, monkeypatch):
    """requests asks the file system about the CA path three times per request; the
    adapter answers once per origin (issue 16). Verification itself is unchanged: the
    untrusted-certificate test above still fails the handshake."""
    client = SPEClient(sim.url, USERNAME, PASSWORD, ca_file=sim.ca_file)
    client.call("GetInstances", instanceFilter="*")  # the first call may look
    looked_up: list[str] = []
    original = os.stat

    def stat(path, *args, **kwargs):
        looked_up.append(os.fspath(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    for _ in range(5):
        assert client.call("GetInstances", instanceFilter="*")
    monkeypatch.setattr(os, "stat", original)
    assert [p for p in looked_up if p == str(sim.ca_file)] == []
    client.close()
