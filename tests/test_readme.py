"""The README stays true: its metric and collector tables are the ones generated from
metricdefs and from the collector declarations."""

from pathlib import Path

from scripts.metrics_table import collectors_table, metrics_table

README = Path(__file__).resolve().parent.parent / "README.md"


def _generated(marker: str) -> str:
    """The README's text between ``<!-- marker:start ...-->`` and ``<!-- marker:end -->``."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n", text.index(f"<!-- {marker}:start")) + 1
    return text[start : text.index(f"<!-- {marker}:end -->")]


def test_readme_metric_table_matches_metricdefs():
    assert _generated("metrics-table") == metrics_table(), "run: python scripts/metrics_table.py"


def test_readme_collector_table_matches_the_declarations():
    assert _generated("collectors-table") == collectors_table(), (
        "run: python scripts/metrics_table.py collectors"
    )


def test_readme_names_the_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert "scripts/run.sh" in text and "scripts/test.sh" in text
