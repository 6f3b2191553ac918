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
