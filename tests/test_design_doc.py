"""docs/design.md stays true to the code: its layout table lists every module of the
package and nothing that does not exist, and every file it names is there."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "docs" / "design.md"


def _layout_rows() -> list[str]:
    text = DESIGN.read_text(encoding="utf-8")
    table = text[text.index("## Package layout") : text.index("## Adding a metric")]
    return re.findall(r"^\| `(exporter/[^`]+)` \|", table, flags=re.M)


def _collector_modules() -> set[str]:
    """Modules that declare a collector: the README's generated table lists those."""
    from exporter.collectors import ALL_COLLECTORS

    return {cls.__module__.replace(".", "/") + ".py" for cls in ALL_COLLECTORS.values()}


def test_layout_table_lists_every_module_once():
    rows = _layout_rows()
    modules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "exporter").rglob("*.py"))
    # A new collector's module needs no row (the README's collector table is generated);
    # every other module does.
    assert sorted(set(rows) | _collector_modules()) == modules
    assert len(rows) == len(set(rows))


def test_every_file_the_design_names_exists():
    text = DESIGN.read_text(encoding="utf-8")
    path = r"`((?:exporter|tests|scripts|benchmarks|docs)/[\w/.-]+\.(?:py|yml|md))`"
    named = set(re.findall(path, text))
    assert named, "the pattern found nothing: fix it before trusting this test"
    assert sorted(n for n in named if not (ROOT / n).exists()) == []
