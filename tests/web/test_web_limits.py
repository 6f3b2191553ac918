"""Hostile clients against the exporter's endpoint, from outside, with raw sockets (issue 13:
B1 head budget, B5 slowloris / descriptor exhaustion, B9 resets, B14 smuggling and methods,
B6 bcrypt flood, B15 health check with basic auth)."""

from __future__ import annotations

import base64
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import bcrypt
import pytest
import requests

import exporter.web as web
from exporter.app import Exporter
from exporter.config import parse_config
from exporter.exposition import Body
from exporter.web import ExporterHTTPServer, WebServer
from exporter.webconfig import WebConfig

ROOT = Path(__file__).resolve().parents[2]


def _config(**web_keys):
    web_keys.setdefault("listen_address", "127.0.0.1:0")
    return parse_config(
        {
            "web": web_keys,
            "targets": {"spe1": {"url": "https://127.0.0.1:1", "username": "u", "password": "p"}},
        }
    )


def _serve(web_config=None, **web_keys) -> Exporter:
    exp = Exporter(_config(**web_keys), web_config=web_config)
    exp.start(schedule=False)
    return exp


def _recv_all(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


@pytest.fixture
def exp():
    exporter = _serve(max_request_bytes=1024)
    yield exporter
    exporter.stop()


def _connect(exporter: Exporter) -> socket.socket:
    return socket.create_connection(("127.0.0.1", exporter.web.address[1]), timeout=5)


def test_head_budget_is_enforced_while_the_head_is_read(exp):
    """B1: 431 comes after max_request_bytes, not after 100 header lines of 64 KiB."""
    with _connect(exp) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):  # 3 x 600 bytes > 1024, and the head is never finished
            sock.sendall(b"X-Big: " + b"a" * 591 + b"\r\n")
        answer = _recv_all(sock, 3)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
    assert answer.endswith(b"Request Header Fields Too Large\n")


def test_request_line_over_the_budget_is_431(exp):
    with _connect(exp) as sock:
        sock.sendall(b"GET /" + b"a" * 2000)  # no line end: the server must not wait for it
        assert _recv_all(sock, 3).startswith(b"HTTP/1.1 431 ")


def test_slowloris_is_cut_at_the_head_deadline(exp, monkeypatch):
    """B5: the head deadline is wall-clock, not per read."""
    monkeypatch.setattr(web, "HEAD_SECONDS", 1.5, raising=False)
    with _connect(exp) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")
        started = time.monotonic()
        closed_after = None
        for _ in range(20):  # one header line every 0.3 s: each read succeeds in time
            try:
                sock.sendall(b"X-A: b\r\n")
                sock.settimeout(0.3)
                if sock.recv(100) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None, "a slow sender kept its connection for 6 s"
    assert closed_after < 3.5


def test_idle_connections_make_room_at_the_connection_cap(exp, monkeypatch):
    """B5: connections beyond the cap never starve a real scrape: the longest-waiting
    silent connection is shut down to make room."""
    exp.web.server.slots.limit = 8
    silent = [_connect(exp) for _ in range(8)]
    try:
        time.sleep(0.3)
        for _ in range(3):
            r = requests.get(f"http://127.0.0.1:{exp.web.address[1]}/-/healthy", timeout=3)
            assert r.status_code == 200
        assert exp.web.server.slots.open <= 8
        assert exp.web.server.deadlines.evicted >= 1
    finally:
        for sock in silent:
            sock.close()


def test_chunked_body_is_not_read_as_a_second_request(exp):
    """B14: a chunked body must not smuggle a request."""
    smuggled = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n"
    chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
    with _connect(exp) as sock:
        sock.sendall(
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk
        )
        answer = _recv_all(sock, 2)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
    assert b"Transfer-Encoding is not accepted" in answer
    assert answer.count(b"HTTP/1.1 ") == 1  # the chunk was never parsed as a request


@pytest.mark.parametrize(
    ("lengths", "status"),
    [((b"0", b"9"), b"400"), ((b"-1",), b"400"), ((b"+5",), b"400"), ((b"5", b"5"), b"405")],
)
def test_content_length_conflicts(exp, lengths, status):
    body = b"GET /-/healthy HTTP/1.1\r\n\r\n"[: int(lengths[0]) if lengths[0].isdigit() else 0]
    head = b"POST /metrics HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"Content-Length: " + v + b"\r\n" for v in lengths
    )
    with _connect(exp) as sock:
        sock.sendall(head + b"\r\n" + body)
        answer = _recv_all(sock, 2)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:80]


@pytest.mark.parametrize("method", [b"FOO", b"TRACE", b"CONNECT", b"PROPFIND"])
def test_unknown_methods_get_405_with_the_configured_headers(method):
    config = WebConfig(headers={"X-Frame-Options": "DENY"})
    exporter = _serve(config)
    try:
        with _connect(exporter) as sock:
            sock.sendall(method + b" /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = _recv_all(sock, 1).decode()
    finally:
        exporter.stop()
    assert answer.startswith("HTTP/1.1 405 "), answer[:80]
    assert "X-Frame-Options: DENY" in answer
    assert "Allow: GET, HEAD" in answer
    assert "<html" not in answer.lower()


class _Big:
    def __init__(self, size: int) -> None:
        self.data = b"x" * size

    def body(self, *, openmetrics: bool, gzipped: bool) -> Body:
        return Body((self.data,), "text/plain", False, len(self.data))


def test_client_reset_mid_response_is_one_log_line_not_a_traceback(capfd):
    """B9: socketserver prints handler tracebacks on stderr, outside the log format."""
    server = ExporterHTTPServer(("127.0.0.1", 0), exposition=_Big(30_000_000), health=None,
                                is_ready=lambda: True, targets=dict)
    runner = WebServer(server)
    runner.start()
    try:
        for _ in range(3):
            sock = socket.create_connection(runner.address)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.recv(1000)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # RST while the server is still writing 30 MB
        time.sleep(1)
    finally:
        runner.stop()
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "Exception occurred during processing" not in err


def test_descriptor_exhaustion_backs_off_instead_of_spinning(tmp_path):
    """B5: with the fd limit reached, accept() fails with EMFILE; the server must sleep
    between attempts (CPU stays low) and log it as one line, never as tracebacks."""
    config = tmp_path / "config.yml"
    config.write_text(
        "web: {listen_address: '127.0.0.1:0'}\n"
        "targets: {spe1: {url: 'https://127.0.0.1:1', username: u, password: p}}\n"
    )
    script = (
        "import logging, resource, sys, time, socket\n"
        "from exporter.app import Exporter\nfrom exporter.config import load_config\n"
        "from exporter.logsetup import setup_logging\n"
        "setup_logging('info')\n"
        f"exp = Exporter(load_config({str(config)!r}))\n"
        "exp.start(schedule=False)\n"
        "print(exp.web.address[1], flush=True)\n"
        "n = len(__import__('os').listdir('/proc/self/fd'))\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (n + 6, resource.getrlimit("
        "resource.RLIMIT_NOFILE)[1]))\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    clients = []
    try:
        port = int(proc.stdout.readline())
        time.sleep(0.3)
        for _ in range(20):  # more connections than descriptors left
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        time.sleep(0.5)
        before = _cpu_seconds(proc.pid)
        time.sleep(2)
        used = _cpu_seconds(proc.pid) - before
    finally:
        proc.kill()
        err = proc.communicate(timeout=10)[1]
        for sock in clients:
            sock.close()
    assert used < 0.5, f"{used:.2f} s CPU in 2 s: the accept loop spins"
    assert "Traceback" not in err
    assert "cannot accept connections" in err


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- basic auth -------------------------------------------------------------------------


def _auth_header(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_unknown_users_cost_the_same_as_known_ones(monkeypatch):
    """B6: no user enumeration by timing.

    Checked twice: deterministically (an unknown user costs one bcrypt check against a
    hash of the configured cost, like a known one) and by the clock, comparing the fastest
    of several checks, which a loaded machine can only slow down, never speed up."""
    from exporter.webconfig import BasicAuth

    auth = BasicAuth({"prometheus": bcrypt.hashpw(b"secret", bcrypt.gensalt(10))})
    checked: list[bytes] = []
    real_checkpw = bcrypt.checkpw

    def counting_checkpw(password: bytes, hashed: bytes) -> bool:
        checked.append(hashed)
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting_checkpw)
    for user in ("prometheus", "mallory"):
        checked.clear()
        assert not auth.check(_auth_header(user, "wrong")["Authorization"])
        assert len(checked) == 1, user
        assert checked[0].split(b"$")[2] == b"10", (user, checked[0])

    def fastest(user: str) -> float:
        times = []
        for _ in range(7):
            started = time.perf_counter()
            assert not auth.check(_auth_header(user, "wrong")["Authorization"])
            times.append(time.perf_counter() - started)
        return min(times)

    known, unknown = fastest("prometheus"), fastest("mallory")
    assert unknown > known * 0.5, (known, unknown)


def test_password_flood_gets_503_fast_and_valid_scrapes_stay_fast():
    """B6: bcrypt work is bounded; a flood queues only a few checks."""
    users = {"prometheus": bcrypt.hashpw(b"secret", bcrypt.gensalt(12))}
    exporter = _serve(WebConfig(users=users))
    url = f"http://127.0.0.1:{exporter.web.address[1]}/metrics"
    good = _auth_header("prometheus", "secret")
    try:
        assert requests.get(url, headers=good, timeout=30).status_code == 200  # cached now
        statuses: list[tuple[int, float]] = []

        def attacker(n: int) -> None:
            for _ in range(2):
                started = time.perf_counter()
                r = requests.get(url, headers=_auth_header("prometheus", f"bad{n}"), timeout=60)
                statuses.append((r.status_code, time.perf_counter() - started))

        threads = [threading.Thread(target=attacker, args=(n,)) for n in range(30)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        valid = []
        for _ in range(5):
            started = time.perf_counter()
            assert requests.get(url, headers=good, timeout=30).status_code == 200
            valid.append(time.perf_counter() - started)
        for t in threads:
            t.join()
    finally:
        exporter.stop()
    busy = [took for status, took in statuses if status == 503]
    assert busy, "a flood of wrong passwords never got 503"
    assert sorted(busy)[len(busy) // 2] < 0.5
    assert {status for status, _ in statuses} <= {401, 503}
    assert sorted(valid)[2] < 0.5, valid


def test_docker_healthcheck_works_with_basic_auth():
    """B15: the Dockerfile's HEALTHCHECK command against an endpoint with basic auth."""
    text = (ROOT / "Dockerfile").read_text()
    code = re.search(r'HEALTHCHECK .*?"-c", "(.*?)"\]', text, re.S).group(1)
    users = {"prometheus": bcrypt.hashpw(b"secret", bcrypt.gensalt(4))}
    exporter = _serve(WebConfig(users=users))
    try:
        port = exporter.web.address[1]
        code = code.replace("127.0.0.1:9474", f"127.0.0.1:{port}")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=20)
        assert result.returncode == 0, result.stderr
        # everything else still needs the password
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 401
    finally:
        exporter.stop()
    closed = _serve(WebConfig(users=users), healthy_without_auth=False)
    try:
        r = requests.get(f"http://127.0.0.1:{closed.web.address[1]}/-/healthy", timeout=5)
        assert r.status_code == 401
    finally:
        closed.stop()




def test_port_in_use_fails_before_any_polling(caplog):
    """Issue 13 B13: the port is bound before the poller starts, so a port in use is one
    clear error and no collector run is started (and then torn down with tracebacks)."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    exporter = Exporter(_config(listen_address=f"127.0.0.1:{port}"))
    try:
        with pytest.raises(OSError):
            exporter.start()
        assert not exporter.poller.running()
        assert exporter.poller._scheduler is None
    finally:
        exporter.stop()
        taken.close()
    assert not [r for r in caplog.records if r.levelno >= 40]
