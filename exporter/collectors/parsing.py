"""Defensive reading of SPE API results.

SPE results are loosely typed JSON: fields can be missing, null, or of a surprising
type after an upgrade. Every accessor here checks the type it needs and raises a
``ParseError`` naming the API function and the path of the field, so a malformed
result becomes one clear failure of one collector or instance, never a stray
``KeyError``/``TypeError`` deep inside a collector.

Where SPE's output type was never captured, the accessors take both plausible forms
(spe-api-fidelity-check.md): a flag is a JSON boolean or the string "true"/"false" in any
case (SPE takes ``"automatic": "true"`` as a string on input), a number or id is a JSON
number or a numeric string. Anything else is still an error naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

BYTES_PER_MB = 1048576


class ParseError(ValueError):
    """An SPE result does not have the shape the collector needs."""

    def __init__(self, function: str, path: str, problem: str) -> None:
        super().__init__(f"{function}: {path}: {problem}")
        self.function = function
        self.path = path


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}" if value is not None else "null"


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but true/false where a number belongs is a shape error.
    return isinstance(value, int | float) and not isinstance(value, bool)


_NUMERIC = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _as_number(value: Any) -> int | float | None:
    """A JSON number, or a numeric string as SPE might send one; None for anything else."""
    if _is_number(value):
        return value
    if isinstance(value, str) and _NUMERIC.fullmatch(value.strip()):
        text = value.strip()
        return int(text) if text.lstrip("+-").isdigit() else float(text)
    return None


def _as_flag(value: Any) -> bool | None:
    """A JSON boolean or the string "true"/"false" (any case); None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.strip().lower())
    return None


class Record:
    """A JSON object of an SPE result, with typed accessors.

    ``path`` is where the object sits in the result (``result[3]``), used in messages.
    Accessors ending in ``_or_none`` accept a missing key or null and return None.
    """

    __slots__ = ("_data", "function", "path")

    def __init__(self, data: Any, function: str, path: str = "result") -> None:
        if not isinstance(data, dict):
            raise ParseError(function, path, f"expected an object, got {_describe(data)}")
        self._data: dict[str, Any] = data
        self.function = function
        self.path = path

    def _fail(self, key: str, expected: str, value: Any) -> ParseError:
        return ParseError(
            self.function, f"{self.path}.{key}", f"expected {expected}, got {_describe(value)}"
        )

    def _get(self, key: str, expected: str) -> Any:
        value = self._data.get(key)
        if value is None:
            problem = "missing" if key not in self._data else "null"
            raise ParseError(self.function, f"{self.path}.{key}", f"{problem}, expected {expected}")
        return value

    def has(self, key: str) -> bool:
        return self._data.get(key) is not None

    def raw(self, key: str) -> Any:
        """The untyped value (None if missing), for fields whose type does not matter."""
        return self._data.get(key)

    def text(self, key: str) -> str:
        value = self._get(key, "a string")
        if not isinstance(value, str):
            raise self._fail(key, "a string", value)
        return value

    def text_or_none(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def number(self, key: str) -> float:
        value = self._get(key, "a number")
        number = _as_number(value)
        if number is None:
            raise self._fail(key, "a number", value)
        try:
            return float(number)
        except OverflowError:  # an integer beyond the float range
            raise self._fail(key, "a number in the float range", value) from None

    def number_or_none(self, key: str) -> float | None:
        return self.number(key) if self.has(key) else None

    def integer(self, key: str) -> int:
        value = self._get(key, "an integer")
        number = _as_number(value)
        if number is None or (isinstance(number, float) and not number.is_integer()):
            raise self._fail(key, "an integer", value)
        return int(number)

    def integer_or_none(self, key: str) -> int | None:
        return self.integer(key) if self.has(key) else None

    def identifier(self, key: str) -> str:
        """An id as a label value: SPE ids are integers (stores, jobs) or strings."""
        value = self._get(key, "an id")
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # exact, whatever its size (float() may overflow)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        raise self._fail(key, "an id (integer or string)", value)

    def identifier_or_none(self, key: str) -> str | None:
        return self.identifier(key) if self.has(key) else None

    def flag(self, key: str) -> bool:
        value = self._get(key, "true or false")
        flag = _as_flag(value)
        if flag is None:
            raise self._fail(key, "true or false", value)
        return flag

    def flag_or_none(self, key: str) -> bool | None:
        return self.flag(key) if self.has(key) else None

    def timestamp(self, key: str) -> float:
        """A datetime field as unix seconds (see ``parse_spe_datetime``)."""
        value = self.text(key)
        try:
            return parse_spe_datetime(value)
        except ValueError as exc:
            raise ParseError(self.function, f"{self.path}.{key}", str(exc)) from None

    def timestamp_or_none(self, key: str) -> float | None:
        return self.timestamp(key) if self.has(key) else None

    def record(self, key: str) -> Record:
        return Record(self._get(key, "an object"), self.function, f"{self.path}.{key}")

    def record_or_none(self, key: str) -> Record | None:
        return self.record(key) if self.has(key) else None

    def records(self, key: str) -> list[Record]:
        """A list of objects; a null or missing list is an error (use ``has`` first)."""
        return records_of(self._get(key, "a list"), self.function, f"{self.path}.{key}")

    def items(self, key: str) -> list[Any]:
        value = self._get(key, "a list")
        if not isinstance(value, list):
            raise self._fail(key, "a list", value)
        return value


def records_of(result: Any, function: str, path: str = "result") -> list[Record]:
    """The objects of a list result (``GetStores``, ``GetInstances``, ...)."""
    if not isinstance(result, list):
        raise ParseError(function, path, f"expected a list, got {_describe(result)}")
    return [Record(item, function, f"{path}[{i}]") for i, item in enumerate(result)]


def mb_to_bytes(megabytes: float) -> float:
    """SPE reports instance sizes in MB (MiB); the contract exports bytes."""
    return megabytes * BYTES_PER_MB


_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(Z|[+-]\d{2}:?\d{2})?"
)


def parse_spe_datetime(text: str) -> float:
    """Unix seconds of an SPE datetime.

    SPE writes ``2026-05-02T03:30:04`` without an offset. We always ask SPE for UTC or a
    zone that is UTC+0 all year (``results``), and the ``*Utc`` fields of GetJobs are UTC,
    so a value without an offset is UTC. ``CertificateExpirationDate`` carries a ``Z``; .NET
    may add up to seven fractional digits, which ``datetime`` cannot hold, so they are
    parsed by hand.
    """
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an SPE datetime: {text!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    tz: timezone = UTC
    if offset and offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz
        )
    except ValueError as exc:
        raise ValueError(f"not an SPE datetime: {text!r} ({exc})") from None
    seconds = moment.timestamp()
    if fraction:
        seconds += int(fraction) / 10 ** len(fraction)
    return seconds


def to_spe_datetime(unix_seconds: float) -> datetime:
    """A naive UTC datetime, whole seconds, for datetime arguments (the client formats it
    as ``YYYY-MM-DDThh:mm:ss``; SPE rejects a ``Z`` or fractional seconds)."""
    return datetime.fromtimestamp(int(unix_seconds), UTC).replace(tzinfo=None)
