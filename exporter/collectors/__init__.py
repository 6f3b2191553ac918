"""Collectors: one module per SPE area, each declaring one ``Collector`` subclass.

Every module of this package is imported here, so a collector exists by being written:
its class declares name, default interval and SPE functions (``Collector``), and
``ALL_COLLECTORS`` lists it. The config schema, the scheduler, the client's allow-list,
the fault tests and the README's collector table all derive from ``ALL_COLLECTORS``.

Order (config display, landing page, README): collectors of the whole server first, then
the per-instance ones, each by name. Create one object per (target, collector): some
collectors keep counters between runs. ``READ_ONLY_FUNCTIONS`` is the client's
allow-list: every SPE function any collector may call.
"""

from __future__ import annotations

import importlib
import pkgutil

from exporter.collectors.base import DECLARED, Collector


def _import_all_modules() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_import_all_modules()

ALL_COLLECTORS: dict[str, type[Collector]] = {
    cls.name: cls for cls in sorted(DECLARED.values(), key=lambda c: (c.per_instance, c.name))
}

READ_ONLY_FUNCTIONS: frozenset[str] = frozenset().union(
    *(cls.allowed_functions for cls in ALL_COLLECTORS.values())
)

__all__ = ["ALL_COLLECTORS", "READ_ONLY_FUNCTIONS"]
