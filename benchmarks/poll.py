"""Benchmark 2: poll throughput and scheduling efficiency (issue 7).

    .venv/bin/python benchmarks/poll.py --instances 1000 --latency 0.05 --concurrency 8 32

The simulator runs in its own process with a fixed latency on every API call (a real,
non-blocking sleep per request: it is a threading server). One full cycle of each
``--collector`` (default ``stores``: one GetStores call per running instance; ``profiles``
and ``jobs`` make several calls per instance, e.g. ``--collector stores profiles jobs``)
is timed through the exporter's own poller (``Poller.run_collector``: the target's shared
executor and connection pool); CPU ms/inst is the exporter's CPU per instance. Ideal
cycle time = calls x latency / C; the script prints the ratio measured / ideal.
``--growth`` then times cycles of the first collector over the first 100 ... N instances
at the largest concurrency, to show that the cycle time grows linearly.

At latency 0 the script also reports the pipeline's raw call rate (simulator + client
on this machine), the ceiling any concurrency can reach.
"""

from __future__ import annotations

import argparse
import time

from _common import (
    TARGET,
    SimulatorProcess,
    banner,
    cpu_seconds,
    exporter_config,
)

from exporter.app import Exporter
from exporter.config import parse_config


def calls_made(exp: Exporter) -> int:
    telemetry = exp.poller.targets[TARGET].telemetry
    return sum(telemetry._requests.values())


def cycle(exp: Exporter, collector: str, subset: int | None) -> tuple[float, int, bool]:
    rt = exp.poller.targets[TARGET]
    rt.known_instances = full_list[exp][:subset]
    before = calls_made(exp)
    started = time.perf_counter()
    result = exp.poller.run_collector(TARGET, collector)
    took = time.perf_counter() - started
    return took, calls_made(exp) - before, bool(result and result.success)


full_list: dict = {}


def make_exporter(sim: SimulatorProcess, concurrency: int) -> Exporter:
    exp = Exporter(parse_config(exporter_config(sim.url, sim.ca_file, concurrency=concurrency)))
    exp.poller.run_collector(TARGET, "instances")
    rt = exp.poller.targets[TARGET]
    refs = [r for r in rt.known_instances or [] if r.status == "running"]
    rt.known_instances = refs
    full_list[exp] = refs
    return exp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per API call")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--collector", nargs="+", default=["stores"])
    parser.add_argument("--growth", type=int, nargs="*", default=[],
                        help="instance counts for the growth series (at max concurrency)")
    args = parser.parse_args()
    banner("poll")

    sim = SimulatorProcess(args.instances, latency=args.latency)
    try:
        print(f"simulator: {args.instances} instances, latency {args.latency * 1000:g} ms "
              f"per call; collectors {' '.join(args.collector)}")
        print(f"{'collector':>9} {'C':>4} {'calls':>6} {'cycle s':>8} {'ideal s':>8} "
              f"{'ratio':>6} {'calls/s':>8} {'exp CPU s':>9} {'CPU ms/inst':>11} "
              f"{'sim CPU s':>9} ok")
        for collector in args.collector:
            for concurrency in args.concurrency:
                exp = make_exporter(sim, concurrency)
                running = len(full_list[exp])
                cycle(exp, collector, min(running, 4 * concurrency))  # warm the pool
                cpu0, sim0 = cpu_seconds_self(), sim.cpu_seconds()
                took, calls, ok = cycle(exp, collector, running)
                cpu1, sim1 = cpu_seconds_self(), sim.cpu_seconds()
                ideal = calls * args.latency / concurrency
                ratio = f"{took / ideal:6.2f}" if ideal else "   n/a"
                print(f"{collector:>9} {concurrency:4d} {calls:6d} {took:8.2f} {ideal:8.2f} "
                      f"{ratio} {calls / took:8.0f} {cpu1 - cpu0:9.2f} "
                      f"{(cpu1 - cpu0) / running * 1000:11.2f} {sim1 - sim0:9.2f} {ok}")
                exp.poller.shutdown()
        if args.growth:
            concurrency = max(args.concurrency)
            collector = args.collector[0]
            exp = make_exporter(sim, concurrency)
            print(f"\ngrowth of {collector} at C={concurrency}:")
            print(f"{'instances':>9} {'calls':>6} {'cycle s':>8} {'ms/instance':>11} "
                  f"{'ratio':>6}")
            for n in args.growth:
                took, calls, _ = cycle(exp, collector, n)
                ideal = calls * args.latency / concurrency
                ratio = f"{took / ideal:6.2f}" if ideal else "   n/a"
                print(f"{n:9d} {calls:6d} {took:8.2f} {took / max(calls, 1) * 1000:11.2f} "
                      f"{ratio}")
            exp.poller.shutdown()
    finally:
        sim.stop()


def cpu_seconds_self() -> float:
    import os

    return cpu_seconds(os.getpid())


if __name__ == "__main__":
    main()
