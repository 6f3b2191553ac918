"""The polling loop, driven by a fake transport (fast and deterministic)."""

from __future__ import annotations

import threading
import time

import pytest

from exporter.spe.envelope import Envelope
from exporter.spe.errors import (
    SPEAPIError,
    SPEAsyncTimeoutError,
    SPEConnectionError,
    SPEPollingStoppedError,
)
from exporter.spe.longrunning import PollPolicy, follow
from exporter.spe.observer import ClientObserver


def running(version: int, percent: float | None = None, text: str | None = None) -> Envelope:
    return Envelope("running", version, "tok", percent, text)


class _Events(ClientObserver):
    """Records the task's events as (event name, *arguments)."""

    def __init__(self, events: list[tuple]) -> None:
        self.events = events

    def async_started(self, *args):
        self.events.append(("async_started", *args))

    def async_progress(self, *args):
        self.events.append(("async_progress", *args))

    def async_finished(self, *args):
        self.events.append(("async_finished", *args))


class FakeTransport:
    """Answers get-status from a script; an exhausted script repeats its last answer."""

    def __init__(self, answers: list[Envelope | Exception], hold: float = 0.0) -> None:
        self.answers = answers
        self.hold = hold  # simulated long-poll wait per get-status
        self.polls: list[tuple[str, int, int]] = []
        self.cancelled: list[str] = []
        self.events: list[tuple] = []
        self.report = _Events(self.events)

    def poll_status(self, token, last_known_version, milliseconds):
        self.polls.append((token, last_known_version, milliseconds))
        if self.hold:
            time.sleep(min(self.hold, milliseconds / 1000))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def cancel_quietly(self, token):
        self.cancelled.append(token)


    def finished(self):
        return [e for e in self.events if e[0] == "async_finished"]


def policy(deadline=5.0, poll_ms=1000, stop=None, cancel_on_shutdown=False):
    return PollPolicy(deadline, poll_ms, stop or threading.Event(), cancel_on_shutdown)


def test_success_after_several_versions_reports_progress_and_echoes_versions():
    final = Envelope("succeeded", 9, None, None, None, result={"done": True})
    transport = FakeTransport([running(5, 30, "step 1"), running(7, 60, "step 2"), final])
    seen: list[Envelope] = []
    env = follow(transport, "VerifyStore", running(3, 0), policy(), seen.append)
    assert env.result == {"done": True}
    # Each poll echoes the last version seen; millisecondsTimeout is the poll length.
    assert transport.polls == [("tok", 3, 1000), ("tok", 5, 1000), ("tok", 7, 1000)]
    progress = [e[3:] for e in transport.events if e[0] == "async_progress"]
    assert progress == [(0.0, None), (30.0, "step 1"), (60.0, "step 2"), (None, None)]
    assert [e.status_version for e in seen] == [3, 5, 7, 9]
    assert transport.events[0] == ("async_started", "VerifyStore", "tok")
    ((_, function, token, result, duration, error),) = transport.finished()
    assert (function, token, result, error) == ("VerifyStore", "tok", "succeeded", None)
    assert duration >= 0


def test_failed_task_raises_api_error_with_the_task_error():
    failed = Envelope("failed", 4, None, error_message="Store is locked", error_details="d")
    transport = FakeTransport([failed])
    with pytest.raises(SPEAPIError) as info:
        follow(transport, "CompactStore", running(3), policy())
    assert (info.value.message, info.value.details, info.value.status_code) == (
        "Store is locked",
        "d",
        "failed",
    )
    # The observer gets SPE's error.message (shown on the landing page and logged).
    assert transport.finished()[0][3:6:2] == ("failed", "Store is locked")


def test_cancelled_task_raises_api_error_with_status_cancelled():
    transport = FakeTransport([Envelope("cancelled", 4)])
    with pytest.raises(SPEAPIError) as info:
        follow(transport, "CompactStore", running(3), policy())
    assert info.value.status_code == "cancelled"
    assert transport.finished()[0][3] == "cancelled"


def test_deadline_cancels_the_task_and_raises_async_timeout():
    transport = FakeTransport([running(3)], hold=0.05)
    started = time.monotonic()
    with pytest.raises(SPEAsyncTimeoutError) as info:
        follow(transport, "VerifyStores", running(3), policy(deadline=0.3, poll_ms=100))
    assert 0.3 <= time.monotonic() - started < 1.0
    assert transport.cancelled == ["tok"]
    assert "deadline of 0.3 s" in str(info.value) and info.value.token == "tok"
    assert transport.finished()[0][3] == "timeout"
    assert transport.finished()[0][5] == info.value.message
    # The last long-poll is shortened to what is left of the deadline.
    assert all(ms <= 100 for _, _, ms in transport.polls)


def test_server_without_long_poll_is_not_hammered():
    transport = FakeTransport([running(3)])  # answers at once, nothing new
    with pytest.raises(SPEAsyncTimeoutError):
        follow(transport, "VerifyStores", running(3), policy(deadline=0.5, poll_ms=1000))
    assert len(transport.polls) <= 4


def test_stop_event_ends_polling_promptly_without_cancel():
    stop = threading.Event()
    transport = FakeTransport([running(3)], hold=0.05)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(SPEPollingStoppedError, match="stopped by shutdown"):
        follow(transport, "VerifyStores", running(3), policy(deadline=60, poll_ms=50, stop=stop))
    assert time.monotonic() - started < 1.0
    assert transport.cancelled == []
    assert transport.finished()[0][3] == "cancelled"


def test_stop_with_cancel_on_shutdown_sends_cancel():
    stop = threading.Event()
    stop.set()
    transport = FakeTransport([running(3)])
    with pytest.raises(SPEPollingStoppedError):
        follow(transport, "X", running(3), policy(stop=stop, cancel_on_shutdown=True))
    assert transport.cancelled == ["tok"]


def test_transport_error_while_polling_propagates_and_reports_failed():
    transport = FakeTransport([SPEConnectionError("connection to h:1 refused")])
    with pytest.raises(SPEConnectionError):
        follow(transport, "X", running(3), policy())
    assert transport.finished()[0][3] == "failed"


def test_progress_callback_exception_is_logged_not_raised(caplog):
    def broken(_env):
        raise RuntimeError("display bug")

    transport = FakeTransport([Envelope("succeeded", 4, result=1)])
    assert follow(transport, "X", running(3), policy(), broken).result == 1
    assert "on_progress callback for X raised" in caplog.text


def test_transport_error_caused_by_shutdown_is_reported_as_stopped():
    stop = threading.Event()

    class ClosingTransport(FakeTransport):
        def poll_status(self, *args):
            stop.set()  # close() ran while this poll was in flight
            raise SPEConnectionError("connection closed")

    transport = ClosingTransport([running(3)])
    with pytest.raises(SPEPollingStoppedError):
        follow(transport, "X", running(3), policy(stop=stop))


def _logged(version: int, lines: str) -> Envelope:
    return Envelope("running", version, "tok", 0, None, log_output=lines)


def test_failed_task_error_carries_the_last_log_lines_once_each():
    """Vendor shape: each status brings its new lines; a repeated status adds nothing."""
    failed = Envelope("failed", 269, None, error_message="Store is locked")
    transport = FakeTransport([
        _logged(9, "  400 messages verified...\r\n"),
        _logged(20, "\r\n  800 messages verified...\r\n  1200 messages verified...\r\n"),
        _logged(31, "x" * 500 + "\r\n"),
        _logged(40, "  1600 messages verified...\r\n"),
        _logged(40, "  1600 messages verified...\r\n"),  # long-poll timed out: repeated
        failed,
    ])
    first = _logged(3, "Verifying file group #1...\r\nCreating a list of messages...\r\n")
    with pytest.raises(SPEAPIError) as info:
        follow(transport, "VerifyStore", first, policy(poll_ms=1))
    assert info.value.message == "Store is locked"  # the exception keeps SPE's message
    error = transport.finished()[0][5]
    assert error == (
        "Store is locked Last log lines: 400 messages verified... | 800 messages verified... | "
        f"1200 messages verified... | {'x' * 200} | 1600 messages verified..."
    )


def test_a_successful_task_reports_no_error_whatever_its_log():
    final = Envelope("succeeded", 9, None, None, None)
    transport = FakeTransport([final])
    follow(transport, "VerifyStore", _logged(3, "Verifying...\r\n"), policy())
    assert transport.finished()[0][5] is None
