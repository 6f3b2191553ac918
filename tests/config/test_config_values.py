"""Single-value parsers: durations, thumbprints, environment references."""

from __future__ import annotations

import pytest

from exporter.config.envsubst import substitute_env
from exporter.config.values import format_duration, parse_duration, parse_interval


@pytest.mark.parametrize(
    ("given", "seconds"),
    [(30, 30.0), (2.5, 2.5), ("45", 45.0), ("90s", 90.0), ("5m", 300.0), ("1h", 3600.0),
     ("1h30m", 5400.0), ("500ms", 0.5), ("1d", 86400.0), (" 10s ", 10.0)],
)  # fmt: skip
def test_durations(given: object, seconds: float) -> None:
    assert parse_duration(given) == seconds


@pytest.mark.parametrize("given", ["5 m", "5min", "m5", "", "1.5.2s", True, None, [], -3, "inf"])
def test_invalid_durations(given: object) -> None:
    with pytest.raises(ValueError, match=r"^must be a duration like 30s, 5m or 1h$"):
        parse_duration(given)


def test_zero_duration_and_short_interval() -> None:
    with pytest.raises(ValueError, match="must be greater than 0"):
        parse_duration("0s")
    with pytest.raises(ValueError, match="must be at least 1s"):
        parse_interval("999ms")
    assert parse_interval("1s") == 1.0


@pytest.mark.parametrize(
    ("seconds", "text"), [(3600, "1h"), (5400, "1h30m"), (90, "1m30s"), (0.5, "0.5s")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_substitution_walks_nested_values_and_reports_paths() -> None:
    errors: list[str] = []
    data = {"a": {"b": ["${X}", "${MISSING}"], "c": 5}, "${X}": "key untouched"}
    result = substitute_env(data, {"X": "x"}, errors)
    assert result == {"a": {"b": ["x", "${MISSING}"], "c": 5}, "${X}": "key untouched"}
    assert errors == ["a.b[1]: environment variable MISSING is not set"]


def test_unclosed_reference_is_an_error() -> None:
    errors: list[str] = []
    substitute_env({"k": "abc${X"}, {"X": "x"}, errors)
    assert errors == ["k: unclosed '${' (write $${ for a literal '${')"]
