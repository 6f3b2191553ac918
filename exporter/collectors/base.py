"""The collector interface (see docs/design.md) and the run-time helpers all collectors share.

A collector turns SPE API results into ``Sample``s and puts them into the run's sink
(``CollectContext.sink``); the ``CollectResult`` it returns says how the run went.
``Collector.collect`` is a fault boundary: whatever happens inside (an SPE error, a
malformed result, a bug), it returns a ``CollectResult`` with ``success=False`` and a
short message; it never raises. The scheduler keeps what a run put into the sink only
when the run succeeded, at least for some instances.

Per-instance work runs through ``map_instances``: ``ctx.concurrency`` lanes on the
target's shared pool (``CollectContext.executor``), or on a pool made for the run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, TypeVar

from exporter.collectors.parsing import ParseError
from exporter.samples import SampleList, SampleSink
from exporter.spe.errors import SPEError

if TYPE_CHECKING:
    from exporter.collectors.access_ledger import AccessLedger
    from exporter.spe.client import SPEClient

__all__ = [
    "CollectContext",
    "CollectResult",
    "Collector",
    "InstanceRef",
    "ParseError",
    "describe_error",
    "map_instances",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class InstanceRef:
    instance_id: str
    status: str


@dataclass
class CollectResult:
    """How a run went; its samples went to ``CollectContext.sink``."""

    success: bool  # the whole run succeeded
    instance_outcomes: dict[str, bool] = field(default_factory=dict)  # instance_id -> success
    errors: list[str] = field(default_factory=list)  # short messages for logs and landing page
    instances: list[InstanceRef] | None = None  # set by the "instances" collector only
    # Lines for the status page besides errors (SPE's dashboard messages); None: nothing
    # to say, and what an earlier run said stays.
    notes: list[str] | None = None
    # Instances whose calls SPE refused because service provider access is off: neither a
    # success nor a failure, so they have no outcome (see exporter.collectors.access).
    access_off: list[str] = field(default_factory=list)

    @classmethod
    def failed(cls, message: str) -> CollectResult:
        return cls(success=False, errors=[message])


@dataclass
class CollectContext:
    target: str
    client: SPEClient
    instance_filter: str  # passed to GetInstances
    concurrency: int  # bound for per-instance calls
    known_instances: list[InstanceRef] | None  # latest list from the instances collector
    now: Callable[[], float] = time.time
    # The target's shared pool: bounds per-instance calls of all its collectors together.
    # Without one, each run makes a pool of ``concurrency`` workers.
    executor: Executor | None = None
    # Where the run's samples go. The scheduler's sink renders each put at once: at
    # thousands of instances a run then never holds every instance's Sample objects,
    # which bounds the exporter's peak memory (docs/design.md, "Memory").
    sink: SampleSink = field(default_factory=SampleList)
    # The target's service provider access states (exporter.collectors.access), shared by
    # its collectors; None where nothing needs them (tests).
    access: AccessLedger | None = None


def describe_error(exc: BaseException) -> str:
    """A short message for ``CollectResult.errors``.

    SPE and parse errors already say what went wrong and where; anything else is a bug,
    so its type is kept to make it recognisable.
    """
    if isinstance(exc, SPEError | ParseError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


def _report_rejected(ctx: CollectContext, exc: BaseException) -> None:
    """A result SPE returned but we could not parse counts as an invalid response."""
    if isinstance(exc, ParseError):
        ctx.client.report.result_rejected(exc.function)


def _log_unexpected(where: str, exc: BaseException) -> None:
    if not isinstance(exc, SPEError | ParseError):
        log.error("%s failed unexpectedly", where, exc_info=exc)


# Every concrete collector, by name, in the order its module was imported (see
# ``exporter.collectors``, which imports them all and orders them for display).
DECLARED: dict[str, type[Collector]] = {}

# The per-instance collectors need SPE's instance list when the instances collector has
# none yet (first run, or the instances collector disabled).
INSTANCE_LIST_FUNCTION = "GetInstances"


class Collector:
    """One SPE area. A subclass declares itself (the only place that does) and
    implements ``run``::

        class StoresCollector(PerInstanceCollector):
            name = "stores"            # collector label value and config key
            interval = 300.0           # default interval in seconds
            functions = ("GetStores",) # the SPE functions it calls (read-only allow-list)

    Declaring ``name`` in a module of this package registers the class (elsewhere, e.g.
    in tests, the declaration is only checked): the config schema (its key and default
    interval), the scheduler, the client's allow-list and the README's collector table
    all follow from it. ``per_instance`` is set by ``PerInstanceCollector``; such a
    collector may also call ``GetInstances`` without listing it.
    """

    name: ClassVar[str]  # collector label value, e.g. "stores"
    interval: ClassVar[float]  # default interval in seconds
    functions: ClassVar[tuple[str, ...]]  # the SPE functions it calls itself
    per_instance: ClassVar[bool] = False  # asks every running instance separately
    # ``functions`` plus what the collector's kind needs (GetInstances per instance):
    # exactly what the client's allow-list must contain for it. Derived, never declared.
    allowed_functions: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            return  # a base class of collectors (PerInstanceCollector), not a collector
        missing = [a for a in ("interval", "functions") if a not in cls.__dict__]
        if missing:
            raise TypeError(f"collector {cls.name!r} must declare {', '.join(missing)}")
        if not cls.interval > 0 or not cls.functions:
            raise TypeError(f"collector {cls.name!r}: interval must be > 0, functions not empty")
        extra = (INSTANCE_LIST_FUNCTION,) if cls.per_instance else ()
        cls.allowed_functions = frozenset((*cls.functions, *extra))
        if cls.__module__.rpartition(".")[0] != __package__:
            return  # e.g. a test's collector: checked, but not one the exporter runs
        if cls.name in DECLARED and DECLARED[cls.name] is not cls:
            raise TypeError(f"collector {cls.name!r} declared twice")
        DECLARED[cls.name] = cls

    def collect(self, ctx: CollectContext) -> CollectResult:
        try:
            return self.run(ctx)
        except Exception as exc:  # noqa: BLE001 - fault boundary: one collector never breaks others
            _log_unexpected(f"collector {self.name} (target {ctx.target})", exc)
            _report_rejected(ctx, exc)
            return CollectResult.failed(describe_error(exc))

    def run(self, ctx: CollectContext) -> CollectResult:
        raise NotImplementedError


def map_instances(
    ctx: CollectContext,
    instance_ids: Sequence[str],
    work: Callable[[str], T],
) -> dict[str, T | Exception]:
    """``work(instance_id)`` for each instance, at most ``ctx.concurrency`` at a time.

    Returns instance_id -> result or the exception it raised, in input order, so one
    failing instance never fails the others.
    """

    def guarded(instance_id: str) -> T | Exception:
        try:
            return work(instance_id)
        except Exception as exc:  # noqa: BLE001 - isolated per instance, reported by caller
            _log_unexpected(f"instance {instance_id} (target {ctx.target})", exc)
            _report_rejected(ctx, exc)
            return exc

    lanes = max(1, min(ctx.concurrency, len(instance_ids)))
    if lanes == 1:
        # No thread for a single instance or concurrency 1: same semantics, less overhead.
        return {iid: guarded(iid) for iid in instance_ids}
    # ``lanes`` tasks each take the next instance until none is left, rather than one
    # task per instance: thousands of queued futures (each with its condition and lock)
    # would be small objects alive for the whole run, which fragments the allocator
    # (docs/design.md, "Memory"). It also lets the shared pool finish one collector's
    # run before the next one's instead of interleaving them.
    # In the order the run's sink keeps them (by instance ID): the sink's spooled text is
    # then read back a part at a time (exporter.groups), not all of it at once.
    pending = iter(sorted(instance_ids))
    take = threading.Lock()
    results: dict[str, T | Exception] = {}

    def lane() -> None:
        # A closed client (shutdown, reload) ends the run after the calls in flight.
        while not ctx.client.stopped:
            with take:
                instance_id = next(pending, None)
            if instance_id is None:
                return
            results[instance_id] = guarded(instance_id)

    def run_lanes(pool: Executor) -> None:
        futures = [pool.submit(lane) for _ in range(lanes)]
        wait(futures)  # one wake-up for the whole run
        for future in futures:
            future.result()  # re-raises if the pool was shut down under the run

    if ctx.executor is not None:
        run_lanes(ctx.executor)
    else:
        with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="collect") as pool:
            run_lanes(pool)
    left_out = RuntimeError("not polled: the exporter stopped or reloaded during the run")
    return {iid: results.get(iid, left_out) for iid in instance_ids}
