"""Wiring: build the runtime objects of the exporter from a validated config.

``Exporter`` owns the snapshot store, the health table, the poller and the web server,
and knows how to start and stop them. ``exporter.cli`` parses flags and signals and
calls into this; tests use it directly.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

from exporter.collectors import READ_ONLY_FUNCTIONS
from exporter.config import Config, TargetConfig
from exporter.exposition import ExpositionCache
from exporter.health import HealthTable
from exporter.scheduler import CollectorPlan, Poller, TargetRuntime
from exporter.snapshot import SnapshotStore
from exporter.spe.client import SPEClient
from exporter.telemetry import Telemetry
from exporter.web import ExporterHTTPServer, WebServer

log = logging.getLogger(__name__)


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
        allowed_functions=set(READ_ONLY_FUNCTIONS),
    )


def build_runtime(name: str, target: TargetConfig, clock: Callable[[], float]) -> TargetRuntime:
    telemetry = Telemetry(name, clock=clock)
    plans = {}
    for collector, schedule in target.collector_schedules().items():
        if schedule.enabled:
            plans[collector] = CollectorPlan(
                collector, schedule.interval_seconds, schedule.max_data_age_seconds
            )
    return TargetRuntime(
        name=name,
        client=build_client(name, target, telemetry),
        telemetry=telemetry,
        instance_filter=target.instance_filter,
        concurrency=target.concurrency,
        plans=plans,
    )


class Exporter:
    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = SnapshotStore()
        self.health = HealthTable()
        self.store.add_source(self.health)
        self.exposition = ExpositionCache(self.store.collect)
        self.poller = Poller(self.store, self.health, clock=clock)
        for name, target in config.targets.items():
            runtime = build_runtime(name, target, clock)
            intervals = {
                c: schedule.interval_seconds for c, schedule in target.collector_schedules().items()
            }
            self.poller.add_target(runtime, intervals)
        self.web: WebServer | None = None

    def target_urls(self) -> dict[str, str]:
        return {name: t.url for name, t in self.config.targets.items()}

    def start(self, *, serve: bool = True, schedule: bool = True) -> None:
        if schedule:
            self.poller.start()
        if serve:
            host, port = self.config.web.host, self.config.web.port
            server_cls = ExporterHTTPServer
            if ":" in host:
                server_cls = type(
                    "ExporterHTTPServer6",
                    (ExporterHTTPServer,),
                    {"address_family": socket.AF_INET6},
                )
            server = server_cls(
                (host, port),
                exposition=self.exposition,
                health=self.health,
                is_ready=self.poller.running,
                targets=self.target_urls,
            )
            self.web = WebServer(server)
            self.web.start()
            log.info("listening", extra={"address": f"{host}:{self.web.address[1]}"})

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()
        self.poller.shutdown()
