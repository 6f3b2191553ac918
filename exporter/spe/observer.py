"""What the SPE client tells about its calls, and to whom.

``ClientObserver`` is the interface: one method per event, each doing nothing by default,
so an observer (the telemetry) overrides what it needs. ``GuardedObserver`` is the
client's side of it: it forwards every event with its own typed call, scrubs the
password out of a long-running task's error message (it goes to logs and the landing
page), and makes sure an observer that raises never breaks the call it observes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from exporter.spe.errors import SPEError

log = logging.getLogger("exporter.spe")


class ClientObserver:
    """Receives call telemetry; every method does nothing unless overridden."""

    def request_finished(self, function: str, duration: float, error: SPEError | None) -> None:
        """A public call ended (with its end-to-end time; ``error`` None on success)."""

    def async_started(self, function: str, token: str) -> None:
        """SPE answered "running" with ``token``: the call is followed with get-status."""

    def async_progress(
        self, function: str, token: str, percent: float | None, text: str | None
    ) -> None:
        """A status of the task arrived (its progress, if SPE reported one)."""

    def async_finished(
        self, function: str, token: str, result: str, duration: float, error: str | None
    ) -> None:
        """The task ended: ``result`` in succeeded, failed, cancelled, timeout; ``error``
        is SPE's message of a failed task or the deadline message (else None)."""

    def result_rejected(self, function: str) -> None:
        """A call succeeded on the wire but its result did not have the expected shape
        (the caller found out while parsing it): an invalid_response failure."""


class GuardedObserver(ClientObserver):
    """Forwards to ``observer`` (if any); scrubs task errors; logs what the observer raises."""

    def __init__(self, observer: ClientObserver | None, scrub: Callable[[str], str]) -> None:
        self._observer = observer
        self._scrub = scrub

    def _guard(self, event: str, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception:
            log.exception("SPE client observer %s raised; ignored", event)

    def request_finished(self, function: str, duration: float, error: SPEError | None) -> None:
        if (o := self._observer) is not None:
            self._guard("request_finished", lambda: o.request_finished(function, duration, error))

    def async_started(self, function: str, token: str) -> None:
        if (o := self._observer) is not None:
            self._guard("async_started", lambda: o.async_started(function, token))

    def async_progress(
        self, function: str, token: str, percent: float | None, text: str | None
    ) -> None:
        if (o := self._observer) is not None:
            self._guard(
                "async_progress", lambda: o.async_progress(function, token, percent, text)
            )

    def async_finished(
        self, function: str, token: str, result: str, duration: float, error: str | None
    ) -> None:
        if (o := self._observer) is not None:
            shown = None if error is None else self._scrub(error)
            self._guard(
                "async_finished",
                lambda: o.async_finished(function, token, result, duration, shown),
            )

    def result_rejected(self, function: str) -> None:
        if (o := self._observer) is not None:
            self._guard("result_rejected", lambda: o.result_rejected(function))
