"""Wiring: build the runtime objects of the exporter from a validated config.

``Exporter`` owns the snapshot store, the health table, the poller and the web server,
and knows how to start and stop them. ``exporter.cli`` parses flags and signals and
calls into this; tests use it directly.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

from exporter.collectors import ALL_COLLECTORS, READ_ONLY_FUNCTIONS
from exporter.config import Config, ConfigError, TargetConfig
from exporter.exposition import ExpositionCache
from exporter.health import HealthTable
from exporter.maintenance import OperationsView
from exporter.runtime import RuntimeMetrics
from exporter.scheduler import CollectorPlan, Poller, TargetRuntime
from exporter.snapshot import SnapshotStore
from exporter.spe.client import SPEClient
from exporter.telemetry import Telemetry
from exporter.web import ExporterHTTPServer, WebServer
from exporter.webconfig import WebConfig

log = logging.getLogger(__name__)

RELOAD_MIN_INTERVAL = 5.0  # seconds between two POST /-/reload (more get 429)
RELOAD_LOCK_WAIT = 30.0  # a reload waits this long for one in progress, then gives up


def _same_target(old: TargetConfig | None, new: TargetConfig) -> bool:
    # Model equality covers every key; the password is compared too because a
    # password_file's content is read at load time, not part of the keys.
    return old is not None and old == new and old.password_value() == new.password_value()


def build_client(name: str, target: TargetConfig, telemetry: Telemetry) -> SPEClient:
    return SPEClient(
        base_url=target.url,
        username=target.username,
        password=target.password_value(),
        ca_file=str(target.tls.ca_file) if target.tls.ca_file else None,
        insecure_skip_verify=target.tls.insecure_skip_verify,
        thumbprint=target.tls.thumbprint,
        connect_timeout=target.timeouts.connect,
        read_timeout=target.timeouts.read,
        async_deadline=target.timeouts.async_deadline,
        # Per-instance calls of several collectors may overlap: size the pool for them.
        pool_size=max(10, target.concurrency * 2),
        observer=telemetry,
        # Exactly the configured maintenance functions become callable, nothing else.
        allowed_functions=set(READ_ONLY_FUNCTIONS) | {t.function for t in target.maintenance},
    )


def build_runtime(
    name: str, target: TargetConfig, clock: Callable[[], float], telemetry: Telemetry | None = None
) -> TargetRuntime:
    telemetry = telemetry or Telemetry(name, clock=clock)
    plans = {}
    for collector, schedule in target.collector_schedules().items():
        if schedule.enabled:
            plans[collector] = CollectorPlan(
                collector, schedule.interval_seconds, schedule.max_data_age_seconds
            )
    # Every function this target may call has its counters at 0 before the first poll.
    telemetry.functions_declared(
        sorted(
            set().union(*(ALL_COLLECTORS[c].allowed_functions for c in plans))
            | {t.function for t in target.maintenance}
        )
    )
    return TargetRuntime(
        name=name,
        client=build_client(name, target, telemetry),
        telemetry=telemetry,
        instance_filter=target.instance_filter,
        concurrency=target.concurrency,
        plans=plans,
        maintenance=list(target.maintenance),
        result_max_overlap=target.result_windows.max_overlap,
    )


class Exporter:
    """The running exporter: one store and health table for its whole life, and a poller
    that a config reload replaces."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        web_config: WebConfig | None = None,
        config_loader: Callable[[], Config] | None = None,
        enable_lifecycle: bool = False,
    ) -> None:
        self.config = config
        self._clock = clock
        self._web_config = web_config or WebConfig()
        self._config_loader = config_loader
        self._enable_lifecycle = enable_lifecycle
        self._reload_lock = threading.Lock()
        self._last_http_reload = float("-inf")
        self._scheduled = False
        # Telemetry counters survive reloads for targets that keep their name.
        self._telemetry: dict[str, Telemetry] = {}
        self.store = SnapshotStore()
        self.health = HealthTable()
        self.store.add_source(self.health)
        # process_* and python_* of the exporter itself (prometheus_client's collectors):
        # the end of the body, re-rendered on its own so the rest stays cached
        self.runtime = RuntimeMetrics()
        # Telemetry and health change with every call of a poll: the body's start, so a
        # scrape during a poll re-renders only that start (issue 16).
        self.exposition = ExpositionCache(
            self.store.collect_data,
            tail=self.runtime.tail,
            head=self.store.collect_sources,
            busy=self.health.busy,
            head_version=self.store.sources_version,
            tail_version=self.runtime.version,
        )
        # New snapshot data is compressed by the poll that made it, not by a scrape.
        self.store.add_listener(self.exposition.prepare)
        self.poller = self._build_poller(config)
        self.health.record_config_load(True, clock())
        self.web: WebServer | None = None

    def _build_poller(
        self, config: Config, carried: dict[str, TargetRuntime] | None = None
    ) -> Poller:
        poller = Poller(self.store, self.health, clock=self._clock)
        for name, target in config.targets.items():
            telemetry = self._telemetry.setdefault(name, Telemetry(name, clock=self._clock))
            runtime = (carried or {}).get(name) or build_runtime(
                name, target, self._clock, telemetry
            )
            intervals = {
                c: schedule.interval_seconds for c, schedule in target.collector_schedules().items()
            }
            poller.add_target(runtime, intervals)
        return poller

    def target_urls(self) -> dict[str, str]:
        return {name: t.url for name, t in self.config.targets.items()}

    def is_ready(self) -> bool:
        return self.poller.running()

    def operations(self) -> dict[str, OperationsView]:
        """Long-running calls and maintenance status per target (landing page)."""
        return self.poller.maintenance.operations()

    def start(self, *, serve: bool = True, schedule: bool = True) -> None:
        """Bind the port first (a port in use is an OSError before anything polls SPE),
        then start polling, then serve."""
        server = self._bind() if serve else None
        if schedule:
            self.poller.start()
            self._scheduled = True
        if server is not None:
            # Changed telemetry, health and process series are rendered in the refresher's
            # thread, not by the scrapes that come while polls keep the interpreter busy.
            self.exposition.start_refresher()
            self.web = WebServer(server)
            self.web.start()
            scheme = "https" if self._web_config.ssl_context else "http"
            host = self.config.web.host
            log.info("listening", extra={"address": f"{scheme}://{host}:{self.web.address[1]}"})

    def _bind(self) -> ExporterHTTPServer:
        host, port = self.config.web.host, self.config.web.port
        server_cls = ExporterHTTPServer
        if ":" in host:
            server_cls = type(
                "ExporterHTTPServer6",
                (ExporterHTTPServer,),
                {"address_family": socket.AF_INET6},
            )
        return server_cls(
            (host, port),
            exposition=self.exposition,
            health=self.health,
            is_ready=self.is_ready,
            targets=self.target_urls,
            ssl_context=self._web_config.ssl_context,
            auth=self._web_config.authenticator(),
            headers=self._web_config.headers,
            max_request_bytes=self.config.web.max_request_bytes,
            reload=self.reload_from_http if self._enable_lifecycle else None,
            operations=self.operations,
            open_healthy=self.config.web.healthy_without_auth,
        )

    def reload_from_http(self) -> tuple[int, str]:
        """POST /-/reload: at most one reload per ``RELOAD_MIN_INTERVAL`` seconds (429)."""
        now = time.monotonic()
        with self._reload_lock:
            wait = self._last_http_reload + RELOAD_MIN_INTERVAL - now
            if wait > 0:
                return 429, f"reloaded under {RELOAD_MIN_INTERVAL:g} s ago, retry in {wait:.0f} s"
            self._last_http_reload = now
        ok, message = self.reload()
        return (200 if ok else 500), message

    def reload(self) -> tuple[bool, str]:
        """Re-read the config (SIGHUP, POST /-/reload). An invalid config keeps the old one."""
        if self._config_loader is None:
            return False, "no config file to reload (demo mode)"
        if not self._reload_lock.acquire(timeout=RELOAD_LOCK_WAIT):
            return False, "another config reload is still running"
        try:
            try:
                config = self._config_loader()
            except ConfigError as exc:
                self.health.record_config_load(False, self._clock())
                log.error(
                    "config reload failed; the previous config stays in use",
                    extra={"error": str(exc)},
                )
                return False, str(exc)
            changed = self.apply(config)
            self.health.record_config_load(True, self._clock())
            log.info(
                "config reloaded", extra={"targets": len(config.targets), "changed": changed}
            )
            return True, f"config reloaded: {len(config.targets)} target(s), {changed} changed"
        finally:
            self._reload_lock.release()

    def apply(self, config: Config) -> int:
        """Switch to ``config``; returns how many targets were added, changed or removed.

        Targets whose config is unchanged keep their client, pool, collector state and
        schedule (a reload does not poll them again); only the others get new runtimes.
        Nothing changed (a SIGHUP storm): nothing is rebuilt at all."""
        old = self.poller
        unchanged = frozenset(
            name
            for name, target in config.targets.items()
            if name in old.targets and _same_target(self.config.targets.get(name), target)
        )
        changed = len(set(config.targets) | set(old.targets)) - len(unchanged)
        if changed == 0:  # web.* changes need a restart anyway (the socket is bound)
            self.config = config
            return 0
        next_runs = old.next_run_times()
        old.shutdown(keep=unchanged)
        for runtime in old.targets.values():
            self.store.remove_source(runtime.telemetry)
        for name in old.targets:
            if name not in config.targets:
                self.store.drop(name)
                self.health.remove_target(name)
                self._telemetry.pop(name, None)
                continue
            schedules = config.targets[name].collector_schedules()
            for collector, schedule in schedules.items():
                if not schedule.enabled:
                    self.store.drop(name, collector)
        self.config = config
        self.poller = self._build_poller(config, {n: old.targets[n] for n in unchanged})
        if self._scheduled:
            self.poller.start({j: t for j, t in next_runs.items() if j.split("/")[0] in unchanged})
        return changed

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()
        self.exposition.stop_refresher()
        self.poller.shutdown()
