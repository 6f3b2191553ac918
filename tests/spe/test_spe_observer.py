"""The client's side of the observer: typed forwarding, scrubbing, never raising."""

from __future__ import annotations

import logging

from exporter.spe.errors import SPETimeoutError
from exporter.spe.observer import ClientObserver, GuardedObserver

PASSWORD = "s3cret-pw"


class Recorder(ClientObserver):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def request_finished(self, function, duration, error):
        self.events.append(("request_finished", function, duration, error))

    def async_started(self, function, token):
        self.events.append(("async_started", function, token))

    def async_progress(self, function, token, percent, text):
        self.events.append(("async_progress", function, token, percent, text))

    def async_finished(self, function, token, result, duration, error):
        self.events.append(("async_finished", function, token, result, duration, error))

    def result_rejected(self, function):
        self.events.append(("result_rejected", function))


def _scrub(text: str) -> str:
    return text.replace(PASSWORD, "***")


def test_every_event_is_forwarded_with_its_arguments_and_task_errors_are_scrubbed():
    recorder = Recorder()
    report = GuardedObserver(recorder, _scrub)
    error = SPETimeoutError("slow", function="GetStores")
    report.request_finished("GetStores", 0.5, error)
    report.async_started("RebuildIndexes", "tok")
    report.async_progress("RebuildIndexes", "tok", 40.0, "step 2")
    report.async_finished("RebuildIndexes", "tok", "failed", 3.0, f"login {PASSWORD} refused")
    report.async_finished("RebuildIndexes", "tok2", "succeeded", 1.0, None)
    report.result_rejected("GetUsers")
    assert recorder.events == [
        ("request_finished", "GetStores", 0.5, error),
        ("async_started", "RebuildIndexes", "tok"),
        ("async_progress", "RebuildIndexes", "tok", 40.0, "step 2"),
        ("async_finished", "RebuildIndexes", "tok", "failed", 3.0, "login *** refused"),
        ("async_finished", "RebuildIndexes", "tok2", "succeeded", 1.0, None),
        ("result_rejected", "GetUsers"),
    ]


def test_an_observer_overriding_nothing_and_no_observer_are_fine():
    for observer in (ClientObserver(), None):
        report = GuardedObserver(observer, _scrub)
        report.request_finished("GetStores", 0.1, None)
        report.async_finished("X", "t", "timeout", 1.0, "late")
        report.result_rejected("GetStores")


def test_an_observer_that_raises_is_logged_and_ignored(caplog):
    class Broken(ClientObserver):
        def result_rejected(self, function):
            raise RuntimeError("observer bug")

    with caplog.at_level(logging.ERROR, logger="exporter.spe"):
        GuardedObserver(Broken(), _scrub).result_rejected("GetUsers")
    assert "SPE client observer result_rejected raised; ignored" in caplog.text
