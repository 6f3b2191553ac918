"""The request-head parser (``exporter.webrequest``, issue 16: replaces ``email.parser`` on
the scrape path) against hostile and ordinary heads: as a function, and from outside over
raw sockets against the real ``ExporterHTTPServer``."""

from __future__ import annotations

import io
import socket

import pytest

from exporter.exposition import Body
from exporter.web import ExporterHTTPServer, WebServer
from exporter.webrequest import (
    MAX_FIELDS,
    BadRequest,
    parse_request_line,
    read_fields,
)


def _fields(head: bytes):
    return read_fields(io.BytesIO(head).readline)


# --- the parser as a function ---------------------------------------------------------


def test_fields_are_found_case_insensitively_with_repeats_in_order():
    headers = _fields(
        b"Host: x\r\naccept-ENCODING:gzip \r\nX-A: 1\r\nX-a:\t2\t\r\nEmpty:\r\n\r\nBody: no\r\n"
    )
    assert headers.get("Accept-Encoding") == "gzip"  # OWS around the value is not part of it
    assert headers["ACCEPT-encoding"] == "gzip"
    assert headers.get_all("x-a") == ["1", "2"]
    assert headers.get("X-A") == "1"
    assert headers.get("Empty") == ""
    assert headers.get("Body") is None  # after the empty line: not a header
    assert headers.get("Missing", "d") == "d"
    assert headers.get_all("Missing") is None
    assert "HOST" in headers and "Body" not in headers
    assert headers.items() == [
        ("Host", "x"), ("accept-ENCODING", "gzip"), ("X-A", "1"), ("X-a", "2"), ("Empty", ""),
    ]
    assert len(headers) == 5


def test_bare_lf_line_ends_and_the_end_of_input_end_the_head():
    assert _fields(b"Host: x\nAccept: a/b\n\n").get("Accept") == "a/b"
    assert _fields(b"Host: x\r\nAccept: a/b\r\n").get("Accept") == "a/b"  # EOF, no empty line
    assert len(_fields(b"")) == 0


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"Host: x\r\nfoo\r\n\r\n", "header line without a colon: 'foo'"),
        (b"Host : x\r\n\r\n", "whitespace between header name and colon: 'Host : x'"),
        (b"Host\t: x\r\n\r\n", "whitespace between header name and colon"),
        (b": x\r\n\r\n", "header line without a name"),
        (b"Ho st: x\r\n\r\n", "invalid character in header name"),
        (b"H(o): x\r\n\r\n", "invalid character in header name"),
        (b"X-A: a\x00b\r\n\r\n", "control character in the value of header X-A"),
        (b"X-A: a\rb\r\n\r\n", "control character in the value of header X-A"),
        (b"X-A: a\x7fb\r\n\r\n", "control character in the value of header X-A"),
        (b"X-A: a\r\r\n\r\n", "control character in the value of header X-A"),
        (b"X-A: a\r\n b\r\n\r\n", "obsolete line folding is not accepted: ' b'"),
        (b"X-A: a\r\n\tb\r\n\r\n", "obsolete line folding is not accepted"),
        (b" Host: x\r\n\r\n", "obsolete line folding is not accepted"),
        (b"Host: a\r\nhost: b\r\n\r\n", "more than one Host header"),
    ],
)
def test_malformed_fields_are_refused_with_400_naming_the_fault(head, message):
    with pytest.raises(BadRequest) as caught:
        _fields(head)
    assert caught.value.status == 400
    assert message in caught.value.message


def test_more_than_max_fields_is_431_and_max_fields_pass():
    assert len(_fields(b"X-A: b\r\n" * MAX_FIELDS + b"\r\n")) == MAX_FIELDS
    with pytest.raises(BadRequest) as caught:
        _fields(b"X-A: b\r\n" * (MAX_FIELDS + 1) + b"\r\n")
    assert caught.value.status == 431


def test_obs_text_in_a_value_is_kept_as_latin_1():
    assert _fields(b"X-A: caf\xe9\r\n\r\n").get("X-A") == "caf\xe9"


@pytest.mark.parametrize(
    ("line", "result"),
    [
        ("GET /metrics HTTP/1.1", ("GET", "/metrics", "HTTP/1.1", (1, 1))),
        ("HEAD / HTTP/1.0", ("HEAD", "/", "HTTP/1.0", (1, 0))),
        ("GET /", ("GET", "/", None, (0, 9))),
    ],
)
def test_request_lines(line, result):
    assert parse_request_line(line) == result


@pytest.mark.parametrize(
    ("line", "status", "message"),
    [
        ("GET / HTTP/2.0", 505, "Invalid HTTP version (2.0)"),
        ("GET / HTTP/1", 400, "Bad request version ('HTTP/1')"),
        ("GET / HTTP/1.1.1", 400, "Bad request version"),
        ("GET / HTTP/1.x", 400, "Bad request version"),
        ("GET / HTTP/\u00b9.1", 400, "Bad request version"),  # a digit to isdigit()
        ("GET / FTP/1.1", 400, "Bad request version"),
        ("GET / x HTTP/1.1", 400, "Bad request syntax"),
        ("POST /", 400, "Bad HTTP/0.9 request type ('POST')"),
        ("GET", 400, "Bad request syntax"),
    ],
)
def test_bad_request_lines(line, status, message):
    with pytest.raises(BadRequest) as caught:
        parse_request_line(line)
    assert caught.value.status == status
    assert message in caught.value.message


# --- from outside, the real server ---------------------------------------------------


class _Exposition:
    def body(self, *, openmetrics: bool, gzipped: bool) -> Body:
        text = f"om={openmetrics} gz={gzipped}\n".encode()
        return Body((text,), "text/plain", False, len(text))


@pytest.fixture(scope="module")
def server():
    httpd = ExporterHTTPServer(("127.0.0.1", 0), exposition=_Exposition(), health=None,
                               is_ready=lambda: True, targets=dict)
    runner = WebServer(httpd)
    runner.start()
    yield runner
    runner.stop()


def _exchange(server, data: bytes, timeout: float = 2.0) -> bytes:
    """Send ``data``, read until the server closes or goes quiet."""
    with socket.create_connection(server.address, timeout=5) as sock:
        sock.sendall(data)
        sock.settimeout(timeout)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except TimeoutError:
            out += b"<open>"  # the server kept the connection
    return out


@pytest.mark.parametrize(
    ("head", "status", "text"),
    [
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\nfoo\r\n\r\n", b"400", b"without a colon"),
        (b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", b"400", b"whitespace between"),
        (b"GET /metrics HTTP/1.1\r\nX: a\x00b\r\n\r\n", b"400", b"control character"),
        (b"GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n", b"400", b"control character"),
        (b"GET /metrics HTTP/1.1\r\nX: a\r\n b\r\n\r\n", b"400", b"line folding"),
        (b"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"400", b"more than one Host"),
        (b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", b"431",
         b"Request Header Fields Too Large"),
        (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", b"431",
         b"Request Header Fields Too Large"),
        (b"GET /metrics HTTP/1.1 x\r\n\r\n", b"", b"Bad request version"),  # no status line
    ],
)
def test_hostile_heads_get_an_error_and_the_connection_closes(server, head, status, text):
    answer = _exchange(server, head)
    assert not answer.endswith(b"<open>"), answer[:200]
    if status:
        assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:200]
        assert b"Connection: close" in answer
    assert text in answer, answer[:300]


def test_http2_request_line_is_505(server):
    assert b"Invalid HTTP version (2.0)" in _exchange(server, b"GET / HTTP/2.0\r\n\r\n")


def test_headers_are_negotiated_case_insensitively(server):
    answer = _exchange(
        server,
        b"GET /metrics HTTP/1.1\r\nhost: x\r\naccept-encoding: gzip\r\n"
        b"ACCEPT: application/openmetrics-text\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:200]
    assert answer.endswith(b"\r\n\r\nom=True gz=True\n")


def test_keep_alive_rules(server):
    # HTTP/1.1 stays open, two requests on one connection (also with bare LF lines)
    answer = _exchange(server, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /metrics HTTP/1.1\nHost: x\n\n", timeout=0.5)
    assert answer.count(b"HTTP/1.1 200 OK") == 2 and answer.endswith(b"<open>")
    # "Connection: close" (also in a list) closes after the response
    for value in (b"close", b"Close", b"keep-alive, close"):
        answer = _exchange(server, b"GET /metrics HTTP/1.1\r\nConnection: " + value + b"\r\n\r\n")
        assert answer.count(b"200 OK") == 1 and not answer.endswith(b"<open>"), value
    # HTTP/1.0 closes unless it asks for keep-alive
    answer = _exchange(server, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK") and not answer.endswith(b"<open>")
    answer = _exchange(server, b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                       timeout=0.5)
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"<open>")


def test_expect_100_continue_is_answered_before_the_response(server):
    answer = _exchange(
        server, b"GET /metrics HTTP/1.1\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), answer[:100]
    # not for HTTP/1.0
    answer = _exchange(server, b"GET /metrics HTTP/1.0\r\nExpect: 100-continue\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:100]


def test_http09_get_gets_the_bare_body(server):
    # (as the standard library: the head still ends at an empty line)
    assert _exchange(server, b"GET /metrics\r\n\r\n") == b"om=False gz=False\n"


def test_double_slash_path_is_one_slash(server):
    answer = _exchange(server, b"GET //metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK")


def test_response_head_has_server_date_and_length(server):
    answer = _exchange(server, b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert lines[1].startswith(b"Server: mailstore-spe-exporter/")
    assert lines[2].startswith(b"Date: ") and lines[2].endswith(b" GMT")
    assert b"Content-Length: %d" % len(body) in lines
    assert b"Vary: Accept, Accept-Encoding" in lines
