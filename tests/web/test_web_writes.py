"""How responses leave the exporter: head and body in one system call on plain TCP, Nagle
off (issue 16: a 3-part gzip body once waited 43 ms for a delayed ACK)."""

from __future__ import annotations

import gzip
import http.client
import socket
import threading

import pytest

import exporter.web as web
from exporter.app import Exporter
from exporter.config import parse_config
from exporter.exposition import Body


@pytest.fixture
def exp():
    exporter = Exporter(
        parse_config(
            {
                "web": {"listen_address": "127.0.0.1:0"},
                "targets": {"spe1": {"url": "https://127.0.0.1:1", "username": "u",
                                     "password": "p"}},
            }
        )
    )
    exporter.start(schedule=False)
    yield exporter
    exporter.stop()


def _record_server_sends(monkeypatch, port: int) -> list[tuple[str, int, int]]:
    """(call, bytes, TCP_NODELAY) of every send on a server-side socket of ``port``."""
    calls: list[tuple[str, int, int]] = []

    def recorder(name):
        original = getattr(socket.socket, name)

        def send(self, data, *args):
            try:
                mine = self.getsockname()[1] == port
            except OSError:
                mine = False
            if mine:  # recorded before sending: the client may look as soon as it is sent
                size = sum(memoryview(d).nbytes for d in data) if name == "sendmsg" else len(data)
                delay = self.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                calls.append((name, size, delay))
            return original(self, data, *args)

        monkeypatch.setattr(socket.socket, name, send)

    for name in ("send", "sendall", "sendmsg"):
        recorder(name)
    return calls


def test_a_multi_part_body_goes_out_with_its_head_in_one_call(exp, monkeypatch):
    port = exp.web.address[1]
    plain = b"".join(f"m{i} {i}\n".encode() for i in range(3000))
    parts = (plain[:10], plain[10:20000], plain[20000:])  # as a stitched body comes
    monkeypatch.setattr(
        exp.exposition, "body",
        lambda **_: Body(parts, "text/plain; version=0.0.4", False, len(plain)),
    )
    calls = _record_server_sends(monkeypatch, port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    assert response.read() == plain
    conn.close()
    assert len(calls) == 1, calls
    name, size, delay = calls[0]
    assert name == "sendmsg" and size > len(plain)  # head + body
    assert delay != 0  # TCP_NODELAY on the accepted connection


def test_gzip_scrape_is_one_call_too(exp, monkeypatch):
    port = exp.web.address[1]
    calls = _record_server_sends(monkeypatch, port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
    response = conn.getresponse()
    assert b"mailstore_spe_up" in gzip.decompress(response.read())
    conn.close()
    assert [c[0] for c in calls] == ["sendmsg"], calls


@pytest.mark.parametrize("count", [60, web._IOV_MAX * 2 + 7])
@pytest.mark.parametrize("tls", [False, True])
def test_send_response_survives_partial_sends(tls, count, monkeypatch):
    """A send buffer far smaller than the body: every byte arrives, in order, with fewer
    parts than one sendmsg may carry (the first, whole-response sendmsg is partial) and
    with more (IOV_MAX)."""
    size = 700 if count > web._IOV_MAX else 7000  # either way far over the send buffer
    parts = [bytes([i % 251]) * (1 + i * 131 % size) for i in range(count)]
    expected = b"HEAD\r\n\r\n" + b"".join(parts)
    left, right = socket.socketpair()
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    left.settimeout(10)  # as the handler's sockets: non-blocking inside, so sends are partial
    received = bytearray()

    def read():
        while chunk := right.recv(1000):
            received.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    if tls:
        # The gather path is for plain sockets only; TLS sockets join runs of parts.
        class FakeTLS:
            def __init__(self):
                self.writes = []

            def sendall(self, data):
                self.writes.append(len(data))
                left.sendall(data)

        fake = FakeTLS()
        monkeypatch.setattr(web.ssl, "SSLSocket", FakeTLS)
        web.send_response(fake, b"HEAD\r\n\r\n", parts)
        assert all(size <= web._JOIN_BELOW for size in fake.writes), fake.writes
        assert len(fake.writes) == -(-len(expected) // web._JOIN_BELOW), fake.writes
    else:
        web.send_response(left, b"HEAD\r\n\r\n", parts)
    left.close()
    reader.join(10)
    right.close()
    assert bytes(received) == expected
