"""Benchmark: one render of a target's telemetry (issue 15).

    .venv/bin/python benchmarks/telemetry_render.py

During a poll every scrape finds the telemetry changed and renders it again: 13 SPE
functions with a request counter, failures and a duration histogram each (234 samples).
Prints the time per render, building the samples only and building plus rendering
(min/median/max of 3 runs). ``exporter`` is imported from the interpreter's environment,
so the same script measures another checkout with that checkout's venv.
"""

from __future__ import annotations

import statistics
import timeit

import exporter.telemetry as telemetry_module
from exporter.spe.errors import SPETimeoutError

FUNCTIONS = (
    "GetStores", "GetUsers", "GetJobs", "GetJobResults", "GetProfiles", "GetWorkerResults",
    "GetInstances", "GetServiceStatus", "GetEnvironmentInfo", "GetCredentials",
    "GetComplianceConfiguration", "GetInstanceStatistics", "GetInstanceProcessLiveStatistics",
)  # fmt: skip


def main() -> None:
    telemetry = telemetry_module.Telemetry("bench")
    for function in FUNCTIONS:
        for k in range(50):
            error = SPETimeoutError("slow", function=function) if k % 10 == 0 else None
            telemetry.request_finished(function, 0.01 * k, error)

    def render():
        with telemetry._lock:
            return telemetry._render_blocks()

    real_render = telemetry_module.render_blocks
    for label, renderer in (("build only", lambda samples: samples), ("build+render", real_render)):
        telemetry_module.render_blocks = renderer
        runs = [min(timeit.repeat(render, number=300, repeat=3)) / 300 * 1e6 for _ in range(3)]
        print(f"{label:13} us per render: min {min(runs):.0f} median "
              f"{statistics.median(runs):.0f} max {max(runs):.0f}")
    telemetry_module.render_blocks = real_render


if __name__ == "__main__":
    main()
