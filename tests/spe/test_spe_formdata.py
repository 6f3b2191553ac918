"""Form encoding of SPE arguments (booleans, omitted None, datetimes, JSON arguments)."""

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl

import pytest

from exporter.spe.formdata import encode_form, format_value


def decoded(args):
    return dict(parse_qsl(encode_form(args).decode(), keep_blank_values=True))


def test_booleans_are_lower_case_words():
    assert decoded({"includeSize": True, "raw": False}) == {"includeSize": "true", "raw": "false"}


def test_none_arguments_are_omitted_but_empty_strings_are_sent():
    assert decoded({"profileID": None, "userName": "", "instanceID": "acme"}) == {
        "userName": "",
        "instanceID": "acme",
    }


def test_empty_body_is_none_so_requests_sends_content_length_zero():
    assert encode_form({}) is None
    assert encode_form({"a": None}) is None


def test_naive_datetime_has_no_zone_and_no_fraction():
    value = datetime(2026, 1, 2, 3, 4, 5, 678901)
    assert format_value("fromIncluding", value) == "2026-01-02T03:04:05"


def test_aware_datetime_is_converted_to_utc_without_suffix():
    cet = timezone(timedelta(hours=1))
    assert format_value("t", datetime(2026, 1, 2, 0, 30, tzinfo=cet)) == "2026-01-01T23:30:00"
    assert format_value("t", datetime(2026, 1, 2, 0, 30, tzinfo=UTC)) == "2026-01-02T00:30:00"


def test_numbers_strings_and_json_arguments():
    assert decoded({"id": 7, "ratio": 0.5, "name": "Store 1 & 2"}) == {
        "id": "7",
        "ratio": "0.5",
        "name": "Store 1 & 2",
    }
    assert decoded({"config": {"serverName": "cas1", "port": 8473}}) == {
        "config": '{"serverName":"cas1","port":8473}'
    }


def test_special_characters_are_url_encoded():
    assert encode_form({"folder": "a b&c=d/ü"}) == b"folder=a+b%26c%3Dd%2F%C3%BC"


def test_unsupported_type_names_the_argument():
    with pytest.raises(TypeError, match=r"'when'.*set"):
        encode_form({"when": {1, 2}})
