"""Decode SPE response bodies.

SPE answers every function with the same JSON *envelope* (statusCode, statusVersion, token,
progress, result, error, logOutput) and prefixes the body with a UTF-8 BOM. ``requests``'
``Response.json()`` fails on that BOM, so bodies are decoded here from raw bytes with
``utf-8-sig``, which accepts bodies with and without a BOM.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from exporter.spe.errors import SPEInvalidResponseError

# How much of an unexpected body goes into an error message: enough to recognise an HTML
# error page or a proxy message, short enough for a log line and a landing page.
EXCERPT_CHARS = 120

# Bounds on what one response may expand to: the byte limit alone lets 45 MB of "{}" become
# 15 million dicts (3 GB). A real answer (GetInstances of 5000 instances) has a few tens
# of thousands of objects and arrays. Counted on the text before parsing (an upper bound:
# braces and commas inside strings count too), so refusing costs one pass in C.
MAX_JSON_CONTAINERS = 500_000  # "{" and "["
MAX_JSON_VALUES = 2_000_000  # ","

# A JSON "\ud800" escape without its pair decodes to a lone surrogate, which cannot be
# encoded: it would break the exposition, a log line or the status page later.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

STATUS_RUNNING = "running"
STATUS_SUCCEEDED = "succeeded"
STATUS_FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Envelope:
    """One decoded SPE response envelope (field names are the snake_case of SPE's)."""

    status_code: str
    status_version: int | None = None
    token: str | None = None
    percent_progress: float | None = None
    status_text: str | None = None
    result: Any = None
    log_output: str | None = None
    error_message: str | None = None
    error_details: str | None = None

    @property
    def is_running(self) -> bool:
        return self.status_code == STATUS_RUNNING

    @property
    def is_failed(self) -> bool:
        return self.status_code == STATUS_FAILED

    @property
    def is_succeeded(self) -> bool:
        return self.status_code == STATUS_SUCCEEDED


def body_excerpt(body: bytes, limit: int = EXCERPT_CHARS) -> str:
    """A short, single-line, printable excerpt of a body for error messages.

    Undecodable bytes are replaced and control characters escaped so a binary or hostile
    body cannot break a log line or a terminal.
    """
    text = body.decode("utf-8-sig", errors="replace")
    shortened = len(text) > limit
    text = text[:limit]
    cleaned = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    if not cleaned:
        return "<empty body>"
    return repr(cleaned + ("..." if shortened else ""))


def decode_json(body: bytes) -> Any:
    """Parse a JSON body that may start with a UTF-8 BOM."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SPEInvalidResponseError(
            f"response body is not valid UTF-8 ({exc.reason} at byte {exc.start}); "
            f"body starts with {body_excerpt(body)}"
        ) from exc
    containers = text.count("{") + text.count("[")
    values = text.count(",")
    if containers > MAX_JSON_CONTAINERS or values > MAX_JSON_VALUES:
        raise SPEInvalidResponseError(
            f"response has too many JSON elements ({containers} objects/arrays, {values} "
            f"commas; limits {MAX_JSON_CONTAINERS} and {MAX_JSON_VALUES}); not decoded. "
            f"Body starts with {body_excerpt(body)}"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SPEInvalidResponseError(
            f"response body is not valid JSON ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno}); body starts with {body_excerpt(body)}"
        ) from exc
    except (ValueError, RecursionError) as exc:
        # Valid JSON that Python refuses: an integer of more than 4300 digits (ValueError)
        # or nesting deeper than the interpreter's recursion limit.
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:80]
        raise SPEInvalidResponseError(
            f"response body cannot be decoded ({problem}); body starts with "
            f"{body_excerpt(body)}"
        ) from exc
    # Only bodies with a surrogate escape are walked (valid pairs are already joined by
    # the parser: whatever surrogate is left is a lone one).
    return _without_lone_surrogates(data) if _SURROGATE_ESCAPE.search(text) else data


def _without_lone_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate in strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


def decode_envelope(body: bytes) -> Envelope:
    """Decode a body into an ``Envelope``; ``SPEInvalidResponseError`` says what is wrong."""
    data = decode_json(body)
    return envelope_from_json(data, body)


def envelope_from_json(data: Any, body: bytes = b"") -> Envelope:
    if not isinstance(data, dict):
        raise SPEInvalidResponseError(
            f"response is a JSON {_json_type(data)}, expected an object with 'statusCode'; "
            f"body starts with {body_excerpt(body)}"
        )
    status_code = data.get("statusCode")
    if not isinstance(status_code, str) or not status_code:
        what = "has no 'statusCode'" if status_code is None else "has a non-string 'statusCode'"
        raise SPEInvalidResponseError(
            f"response object {what}, so it is not an SPE envelope; "
            f"body starts with {body_excerpt(body)}"
        )
    message, details = _error_fields(data.get("error"))
    return Envelope(
        status_code=status_code,
        status_version=_int_or_none(data.get("statusVersion")),
        token=_str_or_none(data.get("token")),
        percent_progress=_float_or_none(data.get("percentProgress")),
        status_text=_str_or_none(data.get("statusText")),
        result=data.get("result"),
        log_output=_str_or_none(data.get("logOutput")),
        error_message=message,
        error_details=details,
    )


def _error_fields(error: Any) -> tuple[str | None, str | None]:
    # Documented as null or {"message": str, "details": str}; be lenient about other shapes
    # so a slightly different server still yields a readable message instead of a crash.
    if error is None:
        return None, None
    if isinstance(error, dict):
        return _str_or_none(error.get("message")), _str_or_none(error.get("details"))
    return str(error), None


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN/Infinity (Python's json accepts them): no usable version
    return int(value)


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer beyond the float range
        return None
