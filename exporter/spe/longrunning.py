"""Follow a long-running SPE task to its end.

SPE may answer *any* call with ``statusCode: "running"`` and a token. The client then
long-polls ``get-status`` (``token``, ``lastKnownStatusVersion``, ``millisecondsTimeout``)
until the status is final (anything but "running"). If the deadline passes first, the task
is cancelled server-side (best effort) so an abandoned task does not keep running for hours.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from exporter.spe.envelope import STATUS_FAILED, STATUS_SUCCEEDED, Envelope
from exporter.spe.errors import (
    SPEAPIError,
    SPEAsyncTimeoutError,
    SPEError,
    SPEInvalidResponseError,
    SPEPollingStoppedError,
)
from exporter.spe.observer import ClientObserver
from exporter.spe.transport import call_deadline

log = logging.getLogger("exporter.spe")

ProgressCallback = Callable[[Envelope], None]

# Observer result values (closed set of the async-operations metric).
RESULT_SUCCEEDED = "succeeded"
RESULT_FAILED = "failed"
RESULT_CANCELLED = "cancelled"
RESULT_TIMEOUT = "timeout"

# A server that answers get-status at once instead of long-polling must not make us spin:
# we then wait this long (interruptibly) before asking again.
MIN_POLL_INTERVAL = 0.2


class StatusTransport(Protocol):
    """What the poller needs from the client (implemented by ``SPEClient``)."""

    def poll_status(self, token: str, last_known_version: int, milliseconds: int) -> Envelope: ...

    def cancel_quietly(self, token: str) -> None: ...

    # Where the task's events go: the client's guarded observer.
    report: ClientObserver


@dataclass(frozen=True, slots=True)
class PollPolicy:
    deadline: float  # seconds from the first response until the task is given up
    poll_ms: int  # millisecondsTimeout of each get-status long-poll
    stop_event: threading.Event
    cancel_on_shutdown: bool = False


# How many of a failed task's last logOutput lines go with its error (status page, log).
LOG_TAIL_LINES = 5
LOG_LINE_MAX_CHARS = 200


class LogTail:
    """The last lines of a task's ``logOutput``.

    In the vendor's example each status carries only the lines new since the previous
    one, so the lines are collected once per new ``statusVersion`` (a repeated status,
    answered when a long-poll times out, is not added again).
    """

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=LOG_TAIL_LINES)

    def add(self, text: str | None) -> None:
        for line in (text or "").splitlines():
            if line.strip():
                self.lines.append(line.strip()[:LOG_LINE_MAX_CHARS])

    def with_error(self, message: str) -> str:
        """``message`` followed by the last log lines, if SPE sent any."""
        if not self.lines:
            return message
        return f"{message} Last log lines: " + " | ".join(self.lines)


def follow(
    transport: StatusTransport,
    function: str,
    first: Envelope,
    policy: PollPolicy,
    on_progress: ProgressCallback | None = None,
) -> Envelope:
    """Poll until ``first``'s task is final; return the succeeded envelope or raise.

    Raises ``SPEAPIError`` (failed or cancelled task), ``SPEAsyncTimeoutError`` (deadline,
    after cancel-async), ``SPEPollingStoppedError`` (client shutdown) or any transport error
    of ``get-status``.
    """
    token = first.token
    if not token:
        raise SPEInvalidResponseError(
            "statusCode is 'running' but the response has no token to poll", function=function
        )
    started = time.monotonic()
    deadline_at = started + policy.deadline
    transport.report.async_started(function, token)
    result = RESULT_FAILED
    error: str | None = None
    tail = LogTail()
    try:
        final = _poll_loop(
            transport, function, token, first, deadline_at, policy, on_progress, tail
        )
        result = _final_result(final)
        if result != RESULT_SUCCEEDED:
            raise _final_error(function, final)
        return final
    except SPEPollingStoppedError:
        result = RESULT_CANCELLED  # our shutdown, not the task's failure: no error to show
        raise
    except SPEAsyncTimeoutError as exc:
        result = RESULT_TIMEOUT
        error = tail.with_error(exc.message)
        raise
    except SPEError as exc:
        # The task failed (SPE's error.message) or get-status itself failed.
        error = tail.with_error(exc.message)
        raise
    finally:
        duration = time.monotonic() - started
        transport.report.async_finished(function, token, result, duration, error)


def _poll_loop(
    transport: StatusTransport,
    function: str,
    token: str,
    current: Envelope,
    deadline_at: float,
    policy: PollPolicy,
    on_progress: ProgressCallback | None,
    tail: LogTail,
) -> Envelope:
    _report_progress(transport, function, token, current, on_progress)
    tail.add(current.log_output)
    version = current.status_version if current.status_version is not None else -1
    while current.is_running:
        if policy.stop_event.is_set():
            _stop(transport, function, token, policy)
        remaining = deadline_at - time.monotonic()
        if remaining <= 0:
            _give_up(transport, function, token, policy.deadline)
        wait_ms = max(1, min(policy.poll_ms, int(remaining * 1000)))
        asked = time.monotonic()
        try:
            # The task's deadline holds even if get-status hangs or trickles: the call is
            # cut at the deadline (a second of grace for a long-poll answered just in time).
            with call_deadline(remaining + 1.0):
                current = transport.poll_status(token, version, wait_ms)
        except SPEError:
            if policy.stop_event.is_set():
                # close() may have torn down the connection under this poll: that is the
                # shutdown, not an API failure.
                _stop(transport, function, token, policy)
            if time.monotonic() >= deadline_at:
                _give_up(transport, function, token, policy.deadline)  # sends cancel-async
            raise
        new_version = current.status_version if current.status_version is not None else version
        if new_version != version or not current.is_running:
            version = new_version
            _report_progress(transport, function, token, current, on_progress)
            tail.add(current.log_output)
        elif time.monotonic() - asked < MIN_POLL_INTERVAL:
            # Nothing new and no long-poll wait happened: pace ourselves (wakes on stop).
            policy.stop_event.wait(min(MIN_POLL_INTERVAL, max(0.0, remaining)))
    return current


def _report_progress(
    transport: StatusTransport,
    function: str,
    token: str,
    env: Envelope,
    on_progress: ProgressCallback | None,
) -> None:
    transport.report.async_progress(function, token, env.percent_progress, env.status_text)
    if on_progress is None:
        return
    try:
        on_progress(env)
    except Exception:
        # A progress display must never break the operation it displays.
        log.exception("on_progress callback for %s raised; ignored", function)


def _give_up(transport: StatusTransport, function: str, token: str, deadline: float) -> None:
    transport.cancel_quietly(token)
    raise SPEAsyncTimeoutError(
        f"long-running call did not finish within its deadline of {deadline:g} s; "
        "cancel-async was sent. Raise async_deadline (or the per-call deadline) if the "
        "operation legitimately takes longer.",
        token=token,
        function=function,
    )


def _stop(transport: StatusTransport, function: str, token: str, policy: PollPolicy) -> None:
    if policy.cancel_on_shutdown:
        transport.cancel_quietly(token)
    raise SPEPollingStoppedError(
        "polling stopped by shutdown; the task "
        + ("was asked to cancel" if policy.cancel_on_shutdown else "may still run on the server"),
        token=token,
        function=function,
    )


def _final_result(env: Envelope) -> str:
    if env.status_code == STATUS_SUCCEEDED:
        return RESULT_SUCCEEDED
    if env.status_code == STATUS_FAILED:
        return RESULT_FAILED
    # SPE's end state after cancel-async is undocumented ("cancelled" is likely); any other
    # final status means the task did not run to its end, which is what "cancelled" reports.
    return RESULT_CANCELLED


def _final_error(function: str, env: Envelope) -> SPEError:
    if env.status_code == STATUS_FAILED:
        return SPEAPIError(
            env.error_message or "long-running task failed without an error message",
            details=env.error_details,
            function=function,
        )
    return SPEAPIError(
        env.error_message or f"long-running task ended with status {env.status_code!r}",
        details=env.error_details,
        function=function,
        status_code=env.status_code,
    )
