"""Print the README's generated tables: metrics (from exporter.metricdefs) and collectors
(from the collector classes' declarations), their single sources of truth.

Usage: python scripts/metrics_table.py            (the metric table)
       python scripts/metrics_table.py collectors (the collector table)
A test checks that README.md contains exactly these tables.
"""

import sys

from exporter.collectors import ALL_COLLECTORS
from exporter.metricdefs import FAMILIES


def metrics_table() -> str:
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for fam in FAMILIES.values():
        if fam.type == "counter":
            name = f"{fam.name}_total"
        else:
            name = fam.name
        labels = ", ".join(fam.labels)
        help_text = fam.help.replace("|", "\\|")
        rows.append(f"| `{name}` | {fam.type} | {labels} | {help_text} |")
    return "\n".join(rows) + "\n"


def _interval(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def collectors_table() -> str:
    rows = [
        "| collector | SPE functions | default interval | per instance |",
        "|---|---|---|---|",
    ]
    for name, cls in ALL_COLLECTORS.items():
        per_instance = "yes" if cls.per_instance else "no"
        functions = ", ".join(cls.functions)
        rows.append(f"| `{name}` | {functions} | {_interval(cls.interval)} | {per_instance} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    table = collectors_table if sys.argv[1:] == ["collectors"] else metrics_table
    print(table(), end="")
