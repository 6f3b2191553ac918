"""Encode SPE function arguments as an ``application/x-www-form-urlencoded`` body.

SPE's conventions (see docs: spe-api-notes.md section 1.3):

* booleans are the lower-case words ``true`` / ``false`` (SPE rejects ``True``);
* ``None`` means "argument not given" and is omitted: SPE fails on empty optional arguments;
* datetimes are ``YYYY-MM-DDThh:mm:ss`` with no zone suffix and no fractions (SPE rejects
  ``Z`` and ``.000``). A naive datetime is sent as is; an aware one is converted to UTC first
  and sent without the suffix, so pass aware datetimes only where SPE expects UTC;
* arguments of SPE type ``json`` (dicts, lists) are sent as a compact JSON string;
* ints, floats and strings are sent as ``str(value)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlencode

SPE_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


def format_value(name: str, value: object) -> str:
    """The form representation of one argument value (never called with ``None``)."""
    # bool first: bool is a subclass of int.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime(SPE_DATETIME_FORMAT)
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    raise TypeError(
        f"argument {name!r} has unsupported type {type(value).__name__}; "
        "use bool, int, float, str, datetime, dict or list"
    )


def encode_form(args: Mapping[str, object]) -> bytes | None:
    """The UTF-8 form body for ``args``, or ``None`` when there is nothing to send.

    For ``None`` the client sends ``Content-Length: 0``, which HTTP.sys requires (it
    answers 411 without it); tests/spe checks the header on the wire.
    """
    pairs = [(name, format_value(name, value)) for name, value in args.items() if value is not None]
    if not pairs:
        return None
    return urlencode(pairs, encoding="utf-8").encode("ascii")
