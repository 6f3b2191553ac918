"""Benchmark: what the exporter's own process_*/python_* series (exporter/runtime.py) cost
a scrape (issue 14).

    .venv/bin/python benchmarks/runtime_cost.py --instances 5000

The runtime series are the exposition cache's tail: when only they moved (at most every
REFRESH_SECONDS), a scrape re-renders the end of the cached body. Measured in one
process, without HTTP (ExpositionCache.body and reading the whole body), for the text
format and text+gzip:

* hit: nothing changed since the last scrape,
* runtime moved: the runtime series' clock stepped past its refresh period before each
  scrape (what a Prometheus scrape sees when nothing else changed),
* collect: one RuntimeMetrics refresh alone (prometheus_client's collectors + rendering).

Three runs; min / median / max of the per-run medians, and the ratio rebuild / hit per run.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import banner, exporter_for, populate_synthetic, start_simulator

from exporter.runtime import RuntimeMetrics


def _median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _read(body) -> int:
    return sum(len(part) for part in body.parts)


def one_run(exp, runtime: RuntimeMetrics, clock: list[float], scrapes: int) -> dict[str, float]:
    out = {}
    for label, gzipped in (("text", False), ("text+gzip", True)):
        def scrape(gzipped=gzipped):
            return _read(exp.exposition.body(openmetrics=False, gzipped=gzipped))

        scrape()
        out[f"{label} hit"] = _median_seconds(scrape, scrapes)

        def moved(scrape=scrape):
            clock[0] += runtime._refresh
            scrape()

        out[f"{label} runtime moved"] = _median_seconds(moved, scrapes)
    fresh = RuntimeMetrics()
    out["collect"] = _median_seconds(lambda: fresh._samples(), scrapes)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=30)
    args = parser.parse_args()
    banner("runtime_cost")
    sim = start_simulator(min(args.instances, 20))
    exp = exporter_for(sim, concurrency=8)
    try:
        populate_synthetic(exp, sim, args.instances)
        # The exporter's runtime series on a clock this benchmark steps.
        clock = [0.0]
        runtime = exp.runtime
        runtime._clock = lambda: clock[0]
        exp.exposition.prepare()
        runs = [one_run(exp, runtime, clock, args.scrapes) for _ in range(3)]
    finally:
        exp.stop()
        sim.stop()
    size = _read(exp.exposition.body(openmetrics=False, gzipped=False))
    print(f"# {args.instances} instances, text body {size / 1e6:.1f} MB, "
          f"{args.scrapes} scrapes per case and run, 3 runs")
    print("| case | min | median | max (of the 3 run medians, ms) |")
    print("|---|---|---|---|")
    for case in runs[0]:
        values = sorted(run[case] * 1000 for run in runs)
        print(f"| {case} | {values[0]:.2f} | {values[1]:.2f} | {values[2]:.2f} |")
    for label in ("text", "text+gzip"):
        ratios = sorted(run[f"{label} runtime moved"] / run[f"{label} hit"] for run in runs)
        print(f"| {label}: runtime moved / hit (ratio per run) | {ratios[0]:.1f}x | "
              f"{ratios[1]:.1f}x | {ratios[2]:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
