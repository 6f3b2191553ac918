"""Crontab expressions -> APScheduler ``CronTrigger``, with standard weekday numbers.

APScheduler 3 reads day-of-week numbers with 0 = Monday (its issue 286), while crontab and
every operator expect 0 = Sunday: "0 3 * * 0" would verify on Mondays. Numeric weekday
items are therefore rewritten to day names before APScheduler sees them. Raises
``ValueError`` with a plain reason, like the other config value parsers.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")  # crontab 0..7
# "*", "*/2", "3", "1-5", "1-5/2": items whose numbers follow crontab's weekday numbering.
_NUMERIC_ITEM = re.compile(r"(?:\*|(\d)(?:-(\d))?)(?:/(\d+))?")


def parse_crontab(expr: object, timezone: str = "UTC") -> CronTrigger:
    """A trigger for a 5-field crontab expression evaluated in ``timezone`` (IANA name)."""
    if not isinstance(expr, str):
        raise ValueError("must be a crontab expression like '0 3 * * 0' (in quotes)")
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"must have 5 fields (minute hour day month weekday), got {len(fields)}")
    zone = parse_timezone(timezone)
    fields[4] = _standard_weekdays(fields[4])
    try:
        return CronTrigger.from_crontab(" ".join(fields), timezone=zone)
    except ValueError as exc:
        raise ValueError(f"invalid crontab expression: {exc}") from None


def parse_timezone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("must be an IANA time zone name like UTC or Europe/Berlin")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone; use an IANA name like UTC or Europe/Berlin") from None


def _standard_weekdays(field: str) -> str:
    items = []
    for item in field.split(","):
        match = _NUMERIC_ITEM.fullmatch(item)
        if match is None or item == "*":
            items.append(item)  # day names ("mon-fri") mean the same in both worlds
            continue
        first, last, step = match.groups()
        if item.startswith("*"):
            low, high = 0, 6
        else:
            low = int(first)
            high = int(last) if last is not None else (6 if step else low)
        if not 0 <= low <= high <= 7 or step == "0":
            raise ValueError(f"invalid crontab expression: weekday item {item!r} is out of 0-7")
        days = range(low, high + 1, int(step) if step else 1)
        items.extend(dict.fromkeys(_DAY_NAMES[day] for day in days))
    return ",".join(dict.fromkeys(items))
