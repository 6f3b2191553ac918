"""Collectors: one module per SPE area, each a ``Collector`` subclass.

``ALL_COLLECTORS`` maps collector names to classes in a stable order (the order of the
design document). Create one object per (target, collector): the profiles and jobs
collectors keep counters between runs. ``READ_ONLY_FUNCTIONS`` is the client's
allow-list: every SPE function any collector may call.
"""

from __future__ import annotations

from exporter.collectors.base import Collector
from exporter.collectors.compliance import ComplianceCollector
from exporter.collectors.credentials import CredentialsCollector
from exporter.collectors.environment import EnvironmentCollector
from exporter.collectors.instances import InstancesCollector
from exporter.collectors.jobs import JobsCollector
from exporter.collectors.process import ProcessCollector
from exporter.collectors.profiles import ProfilesCollector
from exporter.collectors.service import ServiceCollector
from exporter.collectors.statistics import StatisticsCollector
from exporter.collectors.stores import StoresCollector
from exporter.collectors.users import UsersCollector

ALL_COLLECTORS: dict[str, type[Collector]] = {
    cls.name: cls
    for cls in (
        EnvironmentCollector,
        ServiceCollector,
        InstancesCollector,
        StatisticsCollector,
        StoresCollector,
        ProcessCollector,
        ProfilesCollector,
        JobsCollector,
        UsersCollector,
        ComplianceCollector,
        CredentialsCollector,
    )
}

READ_ONLY_FUNCTIONS: frozenset[str] = frozenset(
    {"GetInstances"}.union(*(cls.functions for cls in ALL_COLLECTORS.values()))
)

__all__ = ["ALL_COLLECTORS", "READ_ONLY_FUNCTIONS"]
