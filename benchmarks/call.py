"""Benchmark: exporter CPU per SPE API call, one thread, no latency (issue 7).

    .venv/bin/python benchmarks/call.py --calls 600

Calls ``GetStores`` through the real ``SPEClient`` of an exporter (TLS to the simulator
in its own process, keep-alive) one call after the other and prints the exporter's CPU
time per call (utime + stime of this process) and the simulator's. This is the cost that
bounds the poll rate of one interpreter (see poll.py at C = 32).
"""

from __future__ import annotations

import argparse
import os
import time

from _common import TARGET, SimulatorProcess, banner, cpu_seconds, exporter_config

from exporter.app import Exporter
from exporter.config import parse_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    banner("call")
    sim = SimulatorProcess(args.instances)
    try:
        exp = Exporter(parse_config(exporter_config(sim.url, sim.ca_file, concurrency=1)))
        exp.poller.run_collector(TARGET, "instances")
        rt = exp.poller.targets[TARGET]
        ids = [r.instance_id for r in rt.known_instances or [] if r.status == "running"]
        for instance_id in ids[:20]:  # warm up: connection, caches
            rt.client.call("GetStores", instanceID=instance_id)
        for _ in range(args.repeat):
            cpu0, sim0, wall0 = cpu_seconds(os.getpid()), sim.cpu_seconds(), time.perf_counter()
            for n in range(args.calls):
                rt.client.call("GetStores", instanceID=ids[n % len(ids)])
            wall = time.perf_counter() - wall0
            cpu, sim_cpu = cpu_seconds(os.getpid()) - cpu0, sim.cpu_seconds() - sim0
            print(f"{args.calls} calls: exporter CPU {cpu / args.calls * 1000:.3f} ms/call, "
                  f"simulator CPU {sim_cpu / args.calls * 1000:.3f} ms/call, "
                  f"wall {wall / args.calls * 1000:.3f} ms/call")
        exp.poller.shutdown()
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
