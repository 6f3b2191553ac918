"""SimState: the simulated system at run time, and its thread-safe control methods.

Request handlers read it under ``state.lock`` (an RLock); control methods change it under the
same lock. Time-dependent values (archive growth, process counters) are computed from the
simulated clock on every read; only the "since when" bookkeeping is stored.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from .clock import SimClock
from .faults import FaultBook
from .scenario import (
    INSTANCE_STATUSES,
    MESSAGE_TYPES,
    InstanceSpec,
    MessageSpec,
    Scenario,
    ScenarioError,
    ServerRole,
    StoreSpec,
    parse_instance,
)
from .tasks import TaskRegistry
from .timezones import format_utc_z, server_zone

ARCHIVE_ADMIN = "$archiveadmin"
MIB = 1_048_576


class UnknownObjectError(KeyError):
    """A control method named an instance, store or host that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown object"


@dataclass
class InstanceRuntime:
    """One instance: its scenario spec plus what changes while the simulator runs."""

    spec: InstanceSpec
    running_since: float | None  # simulated time the archive started growing again
    grown_before: float = 0.0  # messages archived in earlier running periods
    process_generation: int = 0  # bumps on every (re)start: new processUniqueID, counters reset
    process_started: float = 0.0
    credential_expiry: dict[int, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def status(self) -> str:
        return self.spec.status

    def messages_grown(self, now: float) -> int:
        """Messages archived since simulated time zero (integer steps: stable between reads)."""
        total = self.grown_before
        if self.running_since is not None:
            total += self.spec.messages_per_hour * max(0.0, now - self.running_since) / 3600.0
        return int(total)

    def growing_store(self) -> StoreSpec | None:
        """New messages go to the first "current" store (else the last store)."""
        for store in self.spec.stores:
            if store.requested_state == "current":
                return store
        return self.spec.stores[-1] if self.spec.stores else None

    def process_unique_id(self) -> str:
        assert self.spec.process is not None
        if self.process_generation == 0:
            return self.spec.process.unique_id
        return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{self.spec.id}/{self.process_generation}"))

    def process_id(self) -> int | None:
        if self.spec.status not in ("running", "frozen"):
            return None
        assert self.spec.process is not None
        return self.spec.process.process_id + 4 * self.process_generation


class SimState:
    """Scenario data, mutable at run time. All public methods are thread-safe."""

    def __init__(self, scenario: Scenario, clock: SimClock | None = None) -> None:
        self.lock = threading.RLock()
        self.scenario = scenario.copy()
        self.clock = clock or SimClock()
        self.start_time = self.clock.now()
        self.faults = FaultBook()
        for fault in self.scenario.faults:
            self.faults.set(fault.function, fault.kind, **fault.params)
        limits = self.scenario.limits
        self.tasks = TaskRegistry(
            self.scenario.cancel_status_code,
            limits.task_expiry_seconds,
            limits.get_status_max_wait_ms,
            shape=lambda: self.scenario.behaviour.long_running,
        )
        self.local_zone: tzinfo = server_zone(self.scenario.server.time_zone)
        self.api_thumbprint: str | None = None  # SHA-1 of the served cert, set by Simulator
        self.username = "admin"
        self.password = "admin-password"
        self.hosts: dict[str, ServerRole] = {
            h.name.lower(): h for h in self.scenario.instance_hosts
        }
        self.messages: list[MessageSpec] = list(self.scenario.messages)
        self.instances: dict[str, InstanceRuntime] = {}
        for spec in self.scenario.instances:
            self._add_runtime(spec)

    # ------------------------------------------------------------------ lookups

    def now(self) -> float:
        return self.clock.now()

    def instance(self, instance_id: str) -> InstanceRuntime | None:
        """Instance ids are matched case-insensitively, as Windows-based SPE does (assumed)."""
        with self.lock:
            return self.instances.get(instance_id.lower())

    def _require(self, instance_id: str) -> InstanceRuntime:
        inst = self.instance(instance_id)
        if inst is None:
            raise UnknownObjectError(f"unknown instance {instance_id!r}")
        return inst

    def _add_runtime(self, spec: InstanceSpec) -> InstanceRuntime:
        now = self.clock.now()
        rt = InstanceRuntime(
            spec=spec,
            running_since=now if spec.status == "running" else None,
            process_started=now,
        )
        for cred in spec.credentials:
            if cred.certificate_expiration_date is not None:
                rt.credential_expiry[cred.id] = cred.certificate_expiration_date
            elif cred.certificate_expires_in_days is not None:
                expires = self.start_time + cred.certificate_expires_in_days * 86400
                rt.credential_expiry[cred.id] = format_utc_z(expires)
        self.instances[spec.id.lower()] = rt
        return rt

    # ------------------------------------------------------------------ runtime control

    def set_fault(self, function: str, kind: str, **params: Any) -> None:
        self.faults.set(function, kind, **params)

    def clear_faults(self, function: str | None = None) -> None:
        self.faults.clear(function)

    def set_credentials(self, username: str, password: str) -> None:
        with self.lock:
            self.username, self.password = username, password

    def check_credentials(self, username: str, password: str) -> bool:
        with self.lock:
            return username == self.username and password == self.password

    def advance(self, seconds: float) -> float:
        """Move the simulated clock forward; returns the new simulated time."""
        self.clock.advance(seconds)
        return self.clock.now()

    def stop_instance(self, instance_id: str, error: str | None = None) -> None:
        with self.lock:
            inst = self._require(instance_id)
            now = self.clock.now()
            if inst.running_since is not None:
                inst.grown_before += (
                    inst.spec.messages_per_hour * max(0.0, now - inst.running_since) / 3600.0
                )
                inst.running_since = None
            inst.spec.status = "stopped"
            inst.spec.start_stop_error = error

    def start_instance(self, instance_id: str) -> None:
        """Start (or restart) the process: new processUniqueID, live counters from zero."""
        with self.lock:
            inst = self._require(instance_id)
            now = self.clock.now()
            if inst.spec.status != "running":
                inst.running_since = now
                inst.process_generation += 1
                inst.process_started = now
            inst.spec.status = "running"
            inst.spec.start_stop_error = None

    def set_instance_status(self, instance_id: str, status: str) -> None:
        """Set any status (e.g. "frozen"); archive growth stops unless it is "running"."""
        if status not in INSTANCE_STATUSES:
            raise ValueError(f"status must be one of {', '.join(INSTANCE_STATUSES)}")
        if status == "running":
            self.start_instance(instance_id)
            return
        with self.lock:
            error = self._require(instance_id).spec.start_stop_error
            self.stop_instance(instance_id, error)
            self._require(instance_id).spec.status = status

    def set_service_provider_access(self, instance_id: str, enabled: bool) -> None:
        with self.lock:
            self._require(instance_id).spec.service_provider_access = bool(enabled)

    def set_growth_rate(self, instance_id: str, messages_per_hour: float) -> None:
        if messages_per_hour < 0:
            raise ValueError("messages_per_hour must be >= 0")
        with self.lock:
            inst = self._require(instance_id)
            now = self.clock.now()
            if inst.running_since is not None:
                inst.grown_before += (
                    inst.spec.messages_per_hour * max(0.0, now - inst.running_since) / 3600.0
                )
                inst.running_since = now
            inst.spec.messages_per_hour = float(messages_per_hour)

    def remove_instance(self, instance_id: str) -> None:
        with self.lock:
            self._require(instance_id)
            del self.instances[instance_id.lower()]

    def add_instance(self, entry: dict[str, Any]) -> None:
        """Add an instance given as a scenario entry (same keys as in the YAML)."""
        with self.lock:
            try:
                spec = parse_instance(entry, "instance", set(self.hosts))
            except ScenarioError as exc:
                raise ValueError(str(exc)) from None
            if spec.id.lower() in self.instances:
                raise ValueError(f"instance {spec.id!r} already exists")
            self._add_runtime(spec)

    def set_store_flags(
        self,
        instance_id: str,
        store_id: int,
        error: Any = ...,
        needs_upgrade: bool | None = None,
        search_indexes_need_rebuild: bool | None = None,
        requested_state: str | None = None,
    ) -> None:
        """Change a store's health flags. ``error=None`` clears the error; omit it to keep it."""
        with self.lock:
            inst = self._require(instance_id)
            store = next((s for s in inst.spec.stores if s.id == int(store_id)), None)
            if store is None:
                raise UnknownObjectError(f"instance {instance_id!r} has no store {store_id}")
            if error is not ...:
                store.error = error
            if needs_upgrade is not None:
                store.needs_upgrade = bool(needs_upgrade)
            if search_indexes_need_rebuild is not None:
                store.search_indexes_need_rebuild = bool(search_indexes_need_rebuild)
            if requested_state is not None:
                store.requested_state = requested_state

    def set_instance_host_active(self, server_name: str, active: bool) -> None:
        with self.lock:
            host = self.hosts.get(server_name.lower())
            if host is None:
                raise UnknownObjectError(f"unknown instance host {server_name!r}")
            host.active = bool(active)

    def add_message(self, type: str, text: str) -> None:
        if type not in MESSAGE_TYPES:
            raise ValueError(f"message type must be one of {', '.join(MESSAGE_TYPES)}")
        with self.lock:
            self.messages.append(MessageSpec(type=type, text=text))

    def clear_messages(self) -> None:
        with self.lock:
            self.messages.clear()
