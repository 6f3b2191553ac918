"""The README stays true: its metric table is the one generated from metricdefs."""

from pathlib import Path

from scripts.metrics_table import metrics_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_metric_table_matches_metricdefs():
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- metrics-table:start")
    start = text.index("\n", start) + 1
    end = text.index("<!-- metrics-table:end -->")
    assert text[start:end] == metrics_table(), "run: python scripts/metrics_table.py"


def test_readme_names_the_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert "scripts/run.sh" in text and "scripts/test.sh" in text
