"""The simulated clock: real time plus an offset that only moves forward.

Everything in the simulator that changes over time (archive growth, process counters, profile
and job runs) is derived from this clock, so ``advance()`` fast-forwards all of it at once.
``freeze()`` stops the clock for fully deterministic tests.
"""

from __future__ import annotations

import threading
import time


class SimClock:
    def __init__(self, frozen_at: float | None = None) -> None:
        """``frozen_at``: start frozen at this epoch (byte-for-byte tests pin the time)."""
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen_at: float | None = frozen_at

    def now(self) -> float:
        """Simulated epoch seconds."""
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds
            return self._offset

    def freeze(self) -> float:
        """Stop the clock at the current simulated time; returns it."""
        with self._lock:
            if self._frozen_at is None:
                self._frozen_at = time.time() + self._offset
            return self._frozen_at

    def unfreeze(self) -> None:
        """Let the clock run again from where it was frozen (never jumps back)."""
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - time.time()
                self._frozen_at = None

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset
