"""Print the README's metric table from exporter.metricdefs (the single source of truth).

Usage: python scripts/metrics_table.py
A test checks that README.md contains exactly this table.
"""

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


if __name__ == "__main__":
    print(metrics_table(), end="")
