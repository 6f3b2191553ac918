"""The README stays true: its metric and collector tables are the ones generated from
metricdefs and from the collector declarations."""

from pathlib import Path

from scripts.metrics_table import collectors_table, metrics_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_metric_table_matches_metricdefs():
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- metrics-table:start")
    start = text.index("\n", start) + 1
    end = text.index("<!-- metrics-table:end -->")
    assert text[start:end] == metrics_table(), "run: python scripts/metrics_table.py"


def test_readme_collector_table_matches_the_declarations():
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- collectors-table:start")
    start = text.index("\n", start) + 1
    end = text.index("<!-- collectors-table:end -->")
    assert text[start:end] == collectors_table(), "run: python scripts/metrics_table.py collectors"


def test_readme_names_the_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert "scripts/run.sh" in text and "scripts/test.sh" in text
