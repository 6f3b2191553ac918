"""Reading run results (GetWorkerResults, GetJobResults) and the time zone id they need.

Result windows and result times are wall-clock times in the zone the caller names
(``timeZoneID``/``timeZoneId``). The exporter wants UTC. "UTC" is a Windows zone id, but
nobody has been seen sending it to SPE (public clients send ``$Local`` or other Windows
ids from GetTimeZones), so on a target's first contact the exporter checks it:

1. ``GetTimeZones`` (of the first instance that answers it) lists "UTC": use "UTC".
2. Otherwise use a listed id that is always UTC+0 without daylight saving time
   ("Greenwich Standard Time", or an entry whose display name starts with "(UTC)").
3. Otherwise no zero-offset id is usable: the profile and job collectors fail for that
   target with one clear error (logged once), and the other collectors keep working.
   Converting from ``$Local`` is not attempted: SPE does not say which listed zone is
   its own, so its offset (and daylight saving rules) cannot be known safely.

If GetTimeZones fails for an instance (e.g. service provider access is off there), the
next instance is asked; until one answers, "UTC" is sent unverified. The choice is kept
per SPE client, i.e. per target until the config is reloaded.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from exporter.collectors.base import CollectContext
from exporter.collectors.ledger import ResultLedger, fetch_windows
from exporter.collectors.parsing import records_of
from exporter.spe.errors import SPEAPIError, SPEError

FUNCTION = "GetTimeZones"
UTC = "UTC"
# Windows zone ids that are UTC+0 all year, in order of preference.
ZERO_OFFSET_IDS = (UTC, "Greenwich Standard Time")
ZERO_OFFSET_DISPLAY_PREFIX = "(UTC)"

log = logging.getLogger(__name__)

T = TypeVar("T")


class TimeZoneUnavailableError(SPEAPIError):
    """SPE lists no time zone id the exporter can read UTC results with."""


@dataclass
class _Choice:
    lock: threading.Lock = field(default_factory=threading.Lock)
    zone_id: str | None = None  # settled choice
    error: str | None = None  # settled failure
    tried: set[str] = field(default_factory=set)  # instances whose GetTimeZones failed


_choices: weakref.WeakKeyDictionary[object, _Choice] = weakref.WeakKeyDictionary()
_choices_lock = threading.Lock()


def pick_zone_id(listed: list[tuple[str, str | None]]) -> str | None:
    """The zero-offset id to use among GetTimeZones' ``(id, displayName)``, or None."""
    ids = {zone_id for zone_id, _ in listed}
    for preferred in ZERO_OFFSET_IDS:
        if preferred in ids:
            return preferred
    for zone_id, display in listed:
        if display is not None and display.startswith(ZERO_OFFSET_DISPLAY_PREFIX):
            return zone_id
    return None


def result_zone_id(ctx: CollectContext, instance_id: str) -> str:
    """The zone id to send for ``instance_id``'s result windows; raises if none is usable."""
    with _choices_lock:
        choice = _choices.setdefault(ctx.client, _Choice())
    with choice.lock:
        if choice.zone_id is not None:
            return choice.zone_id
        if choice.error is not None:
            raise TimeZoneUnavailableError(choice.error, function=FUNCTION)
        if instance_id in choice.tried:
            return UTC
        try:
            rows = records_of(ctx.client.call(FUNCTION, instanceID=instance_id), FUNCTION)
            listed = [(row.text("id"), row.text_or_none("displayName")) for row in rows]
        except SPEError as exc:
            choice.tried.add(instance_id)
            log.info(
                "time zone check postponed: GetTimeZones failed; sending %r unverified",
                UTC, extra={"target": ctx.target, "instance_id": instance_id, "error": str(exc)},
            )
            return UTC
        zone_id = pick_zone_id(listed)
        if zone_id is None:
            choice.error = (
                f"SPE does not know the time zone id {UTC!r} and lists no other id with a "
                f"fixed zero offset ({', '.join(ZERO_OFFSET_IDS[1:])} or a display name "
                f"starting with {ZERO_OFFSET_DISPLAY_PREFIX!r}) among its {len(listed)} zones: "
                "profile and job results cannot be read in UTC"
            )
            log.error("time zone check failed: %s", choice.error, extra={"target": ctx.target})
            raise TimeZoneUnavailableError(choice.error, function=FUNCTION)
        if zone_id != UTC:
            log.warning(
                "SPE does not list the time zone id %r; using %r (zero offset) instead",
                UTC, zone_id, extra={"target": ctx.target},
            )
        choice.zone_id = zone_id
        return zone_id


def read_results(
    ctx: CollectContext,
    ledger: ResultLedger,
    now: float,
    instance_id: str,
    function: str,
    zone_argument: str,
    parse: Callable[[Any], list[T]],
) -> tuple[list[T], float | None]:
    """The rows of one poll of a result function (GetWorkerResults, GetJobResults).

    Windows come from ``ledger`` (split when SPE has too many rows, see ``ledger``), the
    zone id from the check above; ``zone_argument`` is the function's spelling of it
    (``timeZoneID`` or ``timeZoneId``). Returns the parsed rows and the narrowest split
    width for ``ledger.commit``.
    """
    zone_id = result_zone_id(ctx, instance_id)

    def fetch(start: datetime, end: datetime) -> list[T]:
        return parse(ctx.client.call(
            function,
            instanceID=instance_id,
            fromIncluding=start,
            toExcluding=end,
            **{zone_argument: zone_id},
        ))

    return fetch_windows(ledger, now, fetch)
