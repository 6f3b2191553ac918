"""The one-write connections of the SPE client's pools (exporter.spe.transport)."""

from __future__ import annotations

import pytest

from exporter.spe.client import SPEClient
from exporter.spe.transport import (
    MAX_JOINED_BODY,
    OneWriteHTTPConnection,
    OneWriteHTTPSConnectionPool,
)


class RecordingSocket:
    """Stands in for a connected socket; records every write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data) -> None:
        self.writes.append(bytes(data))

    def settimeout(self, _timeout) -> None:
        pass


def connected() -> tuple[OneWriteHTTPConnection, RecordingSocket]:
    conn = OneWriteHTTPConnection("spe.example", 8474)
    sock = RecordingSocket()
    conn.sock = sock
    return conn, sock


def test_head_and_small_body_go_out_in_one_write():
    conn, sock = connected()
    body = b"instanceID=acme&includeSize=true"
    conn.request(
        "POST", "/api/invoke/GetStores", body=body, headers={"Content-Length": str(len(body))}
    )
    (write,) = sock.writes
    head, sent_body = write.split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST /api/invoke/GetStores HTTP/1.1\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    assert sent_body == body


def test_request_without_body_is_one_write_of_the_head():
    conn, sock = connected()
    conn.request("POST", "/api/invoke/Ping", body=None, headers={"Content-Length": "0"})
    (write,) = sock.writes
    assert write.endswith(b"\r\n\r\n")


def test_large_body_is_streamed_as_urllib3_does():
    conn, sock = connected()
    body = b"x" * (MAX_JOINED_BODY + 1)
    conn.request("POST", "/api/invoke/X", body=body, headers={"Content-Length": str(len(body))})
    assert len(sock.writes) == 2
    assert sock.writes[1] == body


def test_failed_request_leaves_nothing_buffered():
    conn, sock = connected()
    with pytest.raises(ValueError):
        conn.request("POST", "/api/invoke/X", body=b"a=1", headers={"Bad\r\nName": "1"})
    assert sock.writes == []
    conn.send(b"next")  # a later write is not swallowed by a leftover buffer
    assert sock.writes == [b"next"]


@pytest.mark.parametrize(
    "tls",
    [{}, {"insecure_skip_verify": True}, {"thumbprint": "ab" * 20}],
    ids=["verify", "insecure", "pinned"],
)
def test_every_client_mode_uses_one_write_pools(tls):
    with SPEClient("https://spe.example:8474", "admin", "pw", **tls) as client:
        pools = client._adapter.poolmanager.pool_classes_by_scheme
        assert issubclass(pools["https"], OneWriteHTTPSConnectionPool)


def test_client_reports_stopped_once_closed():
    # Collector runs stop taking new instances when their client is closed (reload).
    client = SPEClient("https://spe.example:8474", "admin", "pw")
    assert not client.stopped
    client.close()
    assert client.stopped
