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


def test_json_answers_are_bounded_in_elements_not_only_bytes():
    """Issue 13 B16: 45 MB of "{}" (15 million dicts, 3 GB once parsed) is refused before
    parsing; an ordinary answer with many elements still decodes."""
    import pytest

    from exporter.spe.envelope import MAX_JSON_CONTAINERS, decode_json
    from exporter.spe.errors import SPEInvalidResponseError

    bomb = b"[" + b"{}," * MAX_JSON_CONTAINERS + b"{}]"
    with pytest.raises(SPEInvalidResponseError) as info:
        decode_json(bomb)
    assert "too many JSON elements (500002 objects/arrays, 500000 commas; limits 500000" in str(
        info.value
    )
    values = b"[" + b"1," * 2_000_001 + b"1]"
    with pytest.raises(SPEInvalidResponseError, match="2000001 commas"):
        decode_json(values)
    fine = b'{"result": [' + b",".join(b'{"a": [1, 2]}' for _ in range(20_000)) + b"]}"
    assert len(decode_json(fine)["result"]) == 20_000


def test_lone_surrogates_are_replaced_and_pairs_kept():
    from exporter.spe.envelope import decode_json

    data = decode_json(b'{"a": "x\\ud800y", "\\udfff": ["\\ud83d\\ude00", "\\uDC00"]}')
    assert data == {"a": "x\ufffdy", "\ufffd": ["\U0001f600", "\ufffd"]}
