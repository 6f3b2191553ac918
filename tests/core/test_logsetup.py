"""Log lines in logfmt and JSON, with the extra fields the exporter passes."""

import json
import logging

from exporter.logsetup import JSONFormatter, LogfmtFormatter


def _record(msg, **extra):
    record = logging.LogRecord("exporter.health", logging.WARNING, __file__, 1, msg, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_logfmt_quotes_values_with_spaces_and_escapes_quotes():
    line = LogfmtFormatter().format(
        _record("collector failed", target="spe1", error='GetStores: "boom" here')
    )
    assert line.split(" ", 1)[1] == (
        'level=warning logger=exporter.health msg="collector failed" target=spe1 '
        'error="GetStores: \\"boom\\" here"'
    )
    assert line.startswith("ts=") and line.split(" ", 1)[0].endswith("Z")


def test_json_lines_carry_the_same_fields():
    line = JSONFormatter().format(_record("collector recovered", target="spe1", collector="x"))
    data = json.loads(line)
    assert {k: data[k] for k in ("level", "logger", "msg", "target", "collector")} == {
        "level": "warning",
        "logger": "exporter.health",
        "msg": "collector recovered",
        "target": "spe1",
        "collector": "x",
    }


def test_control_characters_and_lone_surrogates_are_escaped():
    """Issue 13 B10: SPE text or a request line with CR, ESC, NUL must not forge a log
    line, drive a terminal or cut a line; a lone surrogate must not break the stream."""
    hostile = "ok\r\nlevel=error msg=forged \x1b[2J\x00end\x85 \ud800"
    for formatter in (LogfmtFormatter(), JSONFormatter()):
        line = formatter.format(_record("http GET /\x1b[31m HTTP/1.1", error=hostile))
        assert "\n" not in line and "\r" not in line
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in line), repr(line)
        line.encode("utf-8")  # strict: no lone surrogate left
    line = LogfmtFormatter().format(_record("m", error=hostile))
    assert 'error="ok\\r\\nlevel=error msg=forged \\u001b[2J\\u0000end\\u0085 \\ud800"' in line
