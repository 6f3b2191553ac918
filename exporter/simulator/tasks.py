"""Long-running tasks: tokens, status versions over real time, long-poll, cancel, expiry.

A task advances one step per ``step_seconds`` of real (monotonic) time - not simulated
time, so ``advance()`` does not finish tasks. How a step looks on the wire is the
scenario's ``behaviour.long_running``:

* ``vendor`` (default), as in the vendor's example (S1): ``statusVersion`` jumps (3, 9, ...,
  the final one higher still), ``percentProgress`` stays 0, ``statusText`` is null and
  ``logOutput`` carries the log lines new in that status.
* ``progressing``: ``statusVersion`` + 1 and ``100/steps`` percent per step, ``statusText``
  "step n of m" (our earlier invention, kept as a variant).

The work itself (``compute``) runs once, when the final status is first needed, so the
final envelope carries the function's real result or error at that moment.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError

# compute() returns the result or raises ApiError.
Compute = Callable[[], Any]
FIRST_VERSION = 1


@dataclass
class Task:
    token: str
    function: str
    created: float
    steps: int
    step_seconds: float
    outcome: str
    error_message: str
    never_finish: bool
    compute: Compute
    shape: str = "vendor"
    cancelled_at: float | None = None
    cancelled_step: int | None = None
    final: dict[str, Any] | None = field(default=None, repr=False)

    def step(self, mono: float) -> int:
        """Steps completed by ``mono`` (``steps`` means finished)."""
        if self.step_seconds <= 0:
            done = self.steps
        else:
            done = min(self.steps, math.floor((mono - self.created) / self.step_seconds))
        if self.never_finish:
            done = min(done, self.steps - 1)
        if self.cancelled_step is not None:
            done = min(done, self.cancelled_step)
        return done

    def finished_at(self) -> float | None:
        if self.cancelled_at is not None:
            return self.cancelled_at
        if self.never_finish:
            return None
        return self.created + self.steps * max(self.step_seconds, 0)

    def next_change(self, mono: float) -> float | None:
        """Monotonic time of the next status change, or None if none is coming."""
        if self.cancelled_at is not None:
            return None
        done = self.step(mono)
        if done >= self.steps or (self.never_finish and done >= self.steps - 1):
            return None
        return self.created + (done + 1) * self.step_seconds


def vendor_version(done: int) -> int:
    """statusVersion after ``done`` steps in the vendor shape: 3, 9, 21, 39, ... (jumps)."""
    return 3 + 3 * done * (done + 1)


class TaskRegistry:
    def __init__(
        self,
        cancel_status_code: str,
        expiry_seconds: float,
        max_wait_ms: int,
        shape: Callable[[], str] = lambda: "vendor",
    ) -> None:
        self.shape = shape  # read at task creation: the scenario may change at run time
        self.cancel_status_code = cancel_status_code
        self.expiry_seconds = expiry_seconds
        self.max_wait_ms = max_wait_ms
        self._tasks: dict[str, Task] = {}
        self._cond = threading.Condition()
        self._stopping = False

    def create(
        self,
        function: str,
        compute: Compute,
        *,
        steps: int,
        step_seconds: float,
        outcome: str = "succeeded",
        error_message: str = "The operation failed.",
        never_finish: bool = False,
    ) -> dict[str, Any]:
        """Start a task; returns the first ("running") envelope."""
        # Token shape as in the vendor example: "sa" + 32 hex digits.
        task = Task(
            token="sa" + secrets.token_hex(16),
            function=function,
            created=time.monotonic(),
            steps=steps,
            step_seconds=step_seconds,
            outcome=outcome,
            error_message=error_message,
            never_finish=never_finish,
            compute=compute,
            shape=self.shape(),
        )
        with self._cond:
            self._purge(time.monotonic())
            self._tasks[task.token] = task
            return self._envelope(task, time.monotonic())

    def status(self, token: str, last_known: int, timeout_ms: float) -> dict[str, Any] | None:
        """get-status: long-poll for a version newer than ``last_known``; None = unknown token."""
        timeout = max(0.0, min(timeout_ms, self.max_wait_ms)) / 1000.0
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                mono = time.monotonic()
                task = self._live(token, mono)
                if task is None:
                    return None
                envelope = self._envelope(task, mono)
                remaining = deadline - mono
                if (
                    envelope["statusVersion"] > last_known
                    or envelope["statusCode"] != "running"
                    or remaining <= 0
                    or self._stopping
                ):
                    return envelope
                change = task.next_change(mono)
                wait = remaining if change is None else min(remaining, max(0.0, change - mono))
                self._cond.wait(wait + 0.001)

    def cancel(self, token: str) -> bool:
        """cancel-async: False for an unknown/expired token. Finished tasks stay as they are."""
        with self._cond:
            mono = time.monotonic()
            task = self._live(token, mono)
            if task is None:
                return False
            if task.final is None and task.cancelled_at is None and task.step(mono) < task.steps:
                task.cancelled_step = task.step(mono)
                task.cancelled_at = mono
                self._cond.notify_all()
            return True

    def stop(self) -> None:
        """Wake every long-poll so the server can shut down promptly."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._tasks)

    # -- internals (call with the condition held)

    def _live(self, token: str, mono: float) -> Task | None:
        task = self._tasks.get(token)
        if task is None:
            return None
        end = task.finished_at()
        if end is not None and mono > end + self.expiry_seconds:
            del self._tasks[token]
            return None
        return task

    def _purge(self, mono: float) -> None:
        for token in list(self._tasks):
            self._live(token, mono)

    def _envelope(self, task: Task, mono: float) -> dict[str, Any]:
        done = task.step(mono)
        if task.cancelled_at is not None:
            return self._final(task, done, cancelled=True)
        if done >= task.steps:
            return self._final(task, done, cancelled=False)
        if task.shape == "vendor":
            return {
                "error": None,
                "token": task.token,
                "statusVersion": vendor_version(done),
                "statusCode": "running",
                "percentProgress": 0,
                "statusText": None,
                "result": None,
                # Only the lines new in this status, as in the vendor example.
                "logOutput": (
                    f"Starting {task.function}...\r\nCreating a list of items to process...\r\n"
                    if done == 0
                    else f"  {done * 400} items processed...\r\n"
                ),
            }
        return {
            "error": None,
            "token": task.token,
            "statusVersion": FIRST_VERSION + done,
            "statusCode": "running",
            "percentProgress": int(done * 100 / task.steps),
            "statusText": f"{task.function}: step {done} of {task.steps}",
            "result": None,
            "logOutput": (
                f"Starting {task.function}...\r\n"
                if done == 0
                else f"Step {done} of {task.steps} completed.\r\n"
            ),
        }

    def _final(self, task: Task, done: int, cancelled: bool) -> dict[str, Any]:
        if task.final is not None:
            return task.final
        result, error, code = None, None, "succeeded"
        if cancelled:
            code = self.cancel_status_code
            if code == "failed":
                error = {"message": "The operation has been cancelled.", "details": ""}
        elif task.outcome == "failed":
            code, error = "failed", {"message": task.error_message, "details": ""}
        else:
            try:
                result = task.compute()
            except ApiError as exc:
                code, error = "failed", exc.to_json()
        # As in the vendor example, the final status has no token and no progress.
        version = (
            vendor_version(done) + 248 if task.shape == "vendor" else FIRST_VERSION + done + 1
        )
        task.final = {
            "error": error,
            "token": None,
            "statusVersion": version,
            "statusCode": code,
            "percentProgress": None,
            "statusText": None,
            "result": result,
            "logOutput": None,
        }
        return task.final
