"""Decoding SPE bodies: BOM handling and the error messages for bodies that are not envelopes."""

import json

import pytest

from exporter.spe.envelope import Envelope, body_excerpt, decode_envelope, decode_json
from exporter.spe.errors import SPEInvalidResponseError

FULL = {
    "error": None,
    "token": "sa46594cd64b35f62796c405c0ed155ee8",
    "statusVersion": 3,
    "statusCode": "running",
    "percentProgress": 40,
    "statusText": "Verifying",
    "result": None,
    "logOutput": "Verifying file group #1...\r\n",
}


@pytest.mark.parametrize("prefix", [b"\xef\xbb\xbf", b""], ids=["bom", "no-bom"])
def test_decodes_all_fields_with_and_without_bom(prefix):
    env = decode_envelope(prefix + json.dumps(FULL).encode())
    assert env == Envelope(
        status_code="running",
        status_version=3,
        token="sa46594cd64b35f62796c405c0ed155ee8",
        percent_progress=40.0,
        status_text="Verifying",
        result=None,
        log_output="Verifying file group #1...\r\n",
    )
    assert env.is_running and not env.is_failed


def test_error_object_is_split_into_message_and_details():
    body = json.dumps(
        {"statusCode": "failed", "error": {"message": "Store not found", "details": "at X.Y()"}}
    ).encode()
    env = decode_envelope(body)
    assert env.is_failed
    assert (env.error_message, env.error_details) == ("Store not found", "at X.Y()")


def test_result_of_any_json_type_is_kept():
    env = decode_envelope(json.dumps({"statusCode": "succeeded", "result": [1, {"a": 2}]}).encode())
    assert env.result == [1, {"a": 2}]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<html><body>Bad Gateway</body></html>", "not valid JSON"),
        (b'\xef\xbb\xbf{"statusCode": "succ', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"[1, 2]", "JSON array, expected an object"),
        (b'"hello"', "JSON string, expected an object"),
        (b'{"result": 1}', "has no 'statusCode'"),
        (b'{"statusCode": 3}', "non-string 'statusCode'"),
    ],
)
def test_non_envelopes_raise_invalid_response_naming_the_problem(body, expected):
    with pytest.raises(SPEInvalidResponseError) as info:
        decode_envelope(body)
    assert expected in str(info.value)
    assert info.value.reason == "invalid_response"


def test_invalid_json_message_contains_an_excerpt_of_the_body():
    with pytest.raises(SPEInvalidResponseError, match="Bad Gateway"):
        decode_envelope(b"<html>Bad Gateway</html>")


def test_excerpt_is_short_single_line_and_printable():
    body = b"\xef\xbb\xbfline1\r\nline2\x1b[31m" + b"x" * 1000
    excerpt = body_excerpt(body, limit=40)
    assert "\n" not in excerpt and "\x1b" not in excerpt
    assert excerpt.endswith("...'")
    assert len(excerpt) < 80
    assert body_excerpt(b"") == "<empty body>"


def test_decode_json_accepts_bare_array_with_bom():
    assert decode_json(b'\xef\xbb\xbf[{"name": "Ping"}]') == [{"name": "Ping"}]
