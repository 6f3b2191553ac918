"""Benchmark: what a growing result-window overlap costs per instance and poll (issue 12).

    .venv/bin/python benchmarks/overlap.py --polls 300

The overlap of GetWorkerResults windows grows with the longest run seen (up to
``result_windows.max_overlap``, default 1 day). Each poll then re-reads every run of the
overlap: more rows from SPE, more JSON to parse, more ids to check and remember. This
script drives the profiles collector's own parsing and ledger code (no HTTP: the rows are
made up front, as SPE would send them) for one instance with four profiles that run
every 15 minutes, polled every 2 minutes, at several overlaps, and prints per poll: rows
and JSON bytes read, exporter CPU (parse + apply + commit; min/median/max of 3 runs) and
the ids the ledger remembers afterwards, with ratios to the 1 h overlap of the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import _common  # puts the repository on sys.path

from exporter.collectors.ledger import DAY, HOUR, OVERLAP_MARGIN, ResultLedger, WindowPolicy
from exporter.collectors.parsing import to_spe_datetime
from exporter.collectors.profiles import (
    InstanceProfiles,
    ProfileDef,
    apply_runs,
    parse_worker_results,
)

PROFILES = 4
EVERY = 15 * 60
DURATION = 7 * 60
POLL = 120
T0 = 1768564800.0


def rows(start: float, end: float) -> list[dict]:
    """Worker rows of runs completing in [start, end), as SPE sends them."""
    out = []
    for slot in range(PROFILES):
        offset = slot * 60 + DURATION
        first = int((start - offset) // EVERY) + 1
        k = first - 1
        while True:
            k += 1
            done = k * EVERY + offset
            if done >= end:
                break
            if done < start:
                continue
            out.append({
                "id": k * 64 + slot, "userName": "admin", "profileId": slot + 1,
                "profileName": f"Mailboxes {slot + 1}", "result": "succeeded",
                "itemsArchived": 3,
                "startTime": to_spe_datetime(done - DURATION).isoformat(),
                "completeTime": to_spe_datetime(done).isoformat(), "machineName": "IH01",
            })
    return out


def run(overlap: float, polls: int) -> tuple[float, float, float, int]:
    """(rows/poll, bytes/poll, CPU seconds/poll, remembered ids) at a fixed overlap."""
    ledger = ResultLedger(WindowPolicy(initial_lookback=DAY, max_overlap=DAY))
    ledger.longest_run = max(0.0, overlap - OVERLAP_MARGIN)  # as if such a run was seen
    assert abs(ledger.overlap - overlap) < 1e-6 or overlap <= HOUR
    state = InstanceProfiles(ledger)
    defs = {str(p + 1): ProfileDef(str(p + 1), f"Mailboxes {p + 1}", True)
            for p in range(PROFILES)}
    now = T0
    bodies = [json.dumps(rows(a, b)) for a, b in ledger.spans(now)]
    apply_runs(state, defs, [r for body in bodies for r in parse_worker_results(
        json.loads(body))])
    ledger.commit(now)
    total_rows = total_bytes = 0
    cpu = 0.0
    for _ in range(polls):
        now += POLL
        bodies = [json.dumps(rows(a, b)) for a, b in ledger.spans(now)]  # SPE's work
        total_bytes += sum(len(b) for b in bodies)
        began = time.process_time()
        runs = [r for body in bodies for r in parse_worker_results(json.loads(body))]
        apply_runs(state, defs, runs)
        ledger.commit(now)
        cpu += time.process_time() - began
        total_rows += len(runs)
    return total_rows / polls, total_bytes / polls, cpu / polls, len(ledger.seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--polls", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _common.banner("overlap")
    print(f"# one instance, {PROFILES} profiles every {EVERY // 60} min, a poll every "
          f"{POLL} s, {args.polls} polls per run; CPU = parse + apply + commit")
    print("# machine shared with other work: CPU figures are noisy, compare ratios")
    overlaps = [HOUR, 5 * HOUR + OVERLAP_MARGIN, 12 * HOUR, DAY]
    results: dict[float, list[tuple[float, float, float, int]]] = {o: [] for o in overlaps}
    for _ in range(args.repeat):
        for overlap in overlaps:  # interleaved, so noise hits every overlap alike
            results[overlap].append(run(overlap, args.polls))
    base_cpu = statistics.median(r[2] for r in results[HOUR])
    base_rows = results[HOUR][0][0]
    print("overlap | rows/poll | KiB/poll | CPU ms/poll min/median/max | ids kept | "
          "rows x | CPU x (median)")
    for overlap in overlaps:
        rs = results[overlap]
        cpus = sorted(r[2] * 1000 for r in rs)
        row_count, body, _, kept = rs[0]
        print(f"{overlap / HOUR:6.2f} h | {row_count:9.1f} | {body / 1024:8.1f} | "
              f"{cpus[0]:.3f} / {statistics.median(cpus):.3f} / {cpus[-1]:.3f} | "
              f"{kept:8d} | {row_count / base_rows:6.1f} | "
              f"{statistics.median(r[2] for r in rs) / base_cpu:5.1f}")


if __name__ == "__main__":
    main()
