"""Structured logging: logfmt or JSON lines on stderr.

Extra fields passed with ``extra={...}`` (target, collector, error, ...) become keys of
the line. Nothing here knows about credentials: callers never log them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

# Attributes every LogRecord has; anything else came from ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


# Characters a logfmt value may not carry raw: C0/C1 controls (CR could forge a line, ESC
# drive a terminal, NUL cut a line short in some tools), DEL, and lone surrogates (from a
# hostile JSON "\ud800" escape; the stream cannot encode them). Quotes and backslashes are
# escaped as in logfmt.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f\ud800-\udfff"\\]')
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\u{ord(char):04x}"


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text == "" or " " in text or "=" in text or _UNSAFE.search(text):
        return '"' + _UNSAFE.sub(_escape, text) + '"'
    return text


def _fields(formatter: logging.Formatter, record: logging.LogRecord) -> dict[str, object]:
    """The keys of one log line, in a stable order: the fixed ones, then the extras."""
    fields: dict[str, object] = {
        "ts": _timestamp(record),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    fields.update(_extras(record))
    if record.exc_info:
        fields["exc"] = formatter.formatException(record.exc_info)
    return fields


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(self, record).items())


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(self, record), default=str)


def setup_logging(level: str = "info", fmt: str = "logfmt") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # APScheduler logs every job run at INFO; keep it for debugging only.
    logging.getLogger("apscheduler").setLevel(
        logging.DEBUG if level.lower() == "debug" else logging.WARNING
    )
