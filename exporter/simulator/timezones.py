"""Time zone ids and the datetime text format of the SPE API.

SPE takes Windows time zone ids ("W. Europe Standard Time"), "UTC" and "$Local" (the server's
own zone). Datetimes travel as ``YYYY-MM-DDThh:mm:ss`` without offset or fractions; result
timestamps are wall-clock times in the requested zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ApiError

LOCAL_ZONE_ID = "$Local"

# A few common Windows ids; enough for scenarios and tests. Unknown ids fail like on a real
# server (which only knows the ids listed by GetTimeZones).
WINDOWS_ZONES: dict[str, tuple[str, str]] = {
    # id: (IANA zone, display name)
    "UTC": ("UTC", "(UTC) Coordinated Universal Time"),
    "GMT Standard Time": ("Europe/London", "(UTC+00:00) Dublin, Edinburgh, Lisbon, London"),
    # Zero offset and no daylight saving time, like UTC.
    "Greenwich Standard Time": ("Atlantic/Reykjavik", "(UTC+00:00) Monrovia, Reykjavik"),
    "W. Europe Standard Time": (
        "Europe/Berlin",
        "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna",
    ),
    "Romance Standard Time": ("Europe/Paris", "(UTC+01:00) Brussels, Copenhagen, Madrid, Paris"),
    "Central European Standard Time": (
        "Europe/Warsaw",
        "(UTC+01:00) Sarajevo, Skopje, Warsaw, Zagreb",
    ),
    "Eastern Standard Time": ("America/New_York", "(UTC-05:00) Eastern Time (US & Canada)"),
    "Central Standard Time": ("America/Chicago", "(UTC-06:00) Central Time (US & Canada)"),
    "Pacific Standard Time": ("America/Los_Angeles", "(UTC-08:00) Pacific Time (US & Canada)"),
    "Tokyo Standard Time": ("Asia/Tokyo", "(UTC+09:00) Osaka, Sapporo, Tokyo"),
    "AUS Eastern Standard Time": (
        "Australia/Sydney",
        "(UTC+10:00) Canberra, Melbourne, Sydney",
    ),
}

DATETIME_ERROR = "String was not recognized as a valid DateTime."
# The accepted argument forms. A trailing Z, an offset or fractional seconds are rejected, as
# observed on SPE 25.3.1 (spe-api-notes §1.9).
_DATETIME_ARG = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?$")


def is_known_zone_id(zone_id: str) -> bool:
    return zone_id in WINDOWS_ZONES or _iana(zone_id) is not None


def _iana(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def server_zone(zone_id: str) -> tzinfo:
    """The scenario's server zone: a Windows id from the table or an IANA name."""
    if zone_id in WINDOWS_ZONES:
        return ZoneInfo(WINDOWS_ZONES[zone_id][0])
    zone = _iana(zone_id)
    if zone is None:
        raise ValueError(f"unknown time zone {zone_id!r}")
    return zone


def resolve_zone_arg(zone_id: str, local_zone: tzinfo, utc_known: bool = True) -> tzinfo:
    """Resolve a timeZoneID/timeZoneId argument. Only Windows ids, "UTC" and "$Local".

    ``utc_known=False`` models an SPE that does not know the id "UTC" (a scenario switch).
    """
    if zone_id == LOCAL_ZONE_ID:
        return local_zone
    if zone_id in WINDOWS_ZONES and (zone_id != "UTC" or utc_known):
        return ZoneInfo(WINDOWS_ZONES[zone_id][0])
    # .NET's TimeZoneNotFoundException text; assumed to pass through unchanged.
    raise ApiError(f"The time zone ID '{zone_id}' was not found on the local computer.")


def parse_datetime_arg(text: str, zone: tzinfo) -> float:
    """Parse a datetime argument as a wall-clock time in ``zone``; return epoch seconds."""
    match = _DATETIME_ARG.match(text.strip())
    if not match:
        raise ApiError(DATETIME_ERROR)
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        naive = datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise ApiError(DATETIME_ERROR) from None
    return naive.replace(tzinfo=zone).timestamp()


def format_in_zone(epoch: float, zone: tzinfo) -> str:
    """Wall-clock time in ``zone`` without offset, as SPE writes result timestamps."""
    return datetime.fromtimestamp(int(epoch), tz=zone).strftime("%Y-%m-%dT%H:%M:%S")


def format_utc(epoch: float) -> str:
    return format_in_zone(epoch, UTC)


def format_utc_z(epoch: float) -> str:
    """UTC with a trailing Z: only GetCredentials' CertificateExpirationDate looks like this."""
    return format_utc(epoch) + "Z"


def http_date(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def local_dates_between(start: float, end: float, zone: tzinfo) -> list[datetime]:
    """Local midnights (naive dates in ``zone``) that may hold events between two instants."""
    first = datetime.fromtimestamp(start, tz=zone).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end, tz=zone).date() + timedelta(days=1)
    days = (last - first).days
    return [datetime.combine(first + timedelta(days=i), datetime.min.time()) for i in range(days)]
