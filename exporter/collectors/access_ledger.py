"""Service provider access of one target's instances, shared by its collectors.

Kept apart from ``exporter.collectors.access`` (the collector) so that
``exporter.collectors.base`` can name it without an import cycle.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("exporter.collectors.access")


class AccessLedger:
    """Service provider access of one target's instances, from the flag and refusals."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._flag: dict[str, bool] = {}  # instance_id -> GetArchiveAdminEnabled
        self._refused: dict[str, set[str]] = {}  # instance_id -> collectors refused
        self._logged: dict[str, bool] = {}  # instance_id -> last state logged

    def enabled(self, instance_id: str) -> bool:
        with self._lock:
            return self._enabled(instance_id)

    def _enabled(self, instance_id: str) -> bool:
        return self._flag.get(instance_id, True) and not self._refused.get(instance_id)

    def flag_read(self, instance_id: str, enabled: bool) -> None:
        self._update(instance_id, lambda: self._flag.__setitem__(instance_id, enabled))

    def refused(self, instance_id: str, collector: str) -> None:
        self._update(
            instance_id, lambda: self._refused.setdefault(instance_id, set()).add(collector)
        )

    def answered(self, instance_id: str, collector: str) -> None:
        if instance_id not in self._refused:  # fast path, no lock: nothing to clear
            return
        self._update(instance_id, lambda: self._refused.get(instance_id, set()).discard(collector))

    def forget_absent(self, existing: set[str]) -> None:
        with self._lock:
            for table in (self._flag, self._refused, self._logged):
                for iid in [i for i in table if i not in existing]:
                    del table[iid]

    def _update(self, instance_id: str, change: Callable[[], object]) -> None:
        with self._lock:
            change()
            if not self._refused.get(instance_id, True):
                del self._refused[instance_id]
            now = self._enabled(instance_id)
            before = self._logged.get(instance_id, True)
            self._logged[instance_id] = now
        if now != before:
            # One line per change of state: a tenant's choice, so info, not a warning.
            log.info(
                "service provider access %s", "enabled" if now else "off",
                extra={"target": self.target, "instance_id": instance_id},
            )
