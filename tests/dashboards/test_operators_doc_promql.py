"""The PromQL examples in docs/operators.md parse and use only contract metrics."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "operators.md"


def doc_exprs() -> list[str]:
    """Expressions of the ```promql blocks; comment lines and blank lines separate them."""
    exprs: list[str] = []
    for block in re.findall(r"```promql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        current: list[str] = []
        for line in [*block.splitlines(), ""]:
            if line.startswith("#") or not line.strip():
                if current:
                    exprs.append(" ".join(current))
                    current = []
            else:
                current.append(line.strip())
    return exprs


def test_examples_parse(promtool: str, tmp_path: Path) -> None:
    exprs = doc_exprs()
    assert len(exprs) >= 5
    rules = [{"record": f"doc:example_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "doc.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "doc", "rules": rules}]}),
                    encoding="utf-8")
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"promtool:\n{proc.stdout}\n{proc.stderr}"


def test_examples_use_contract_metrics() -> None:
    try:
        from exporter.metricdefs import family_of
    except ImportError as exc:
        pytest.fail(f"cannot import exporter.metricdefs ({exc}): install the project "
                    "(scripts/test.sh) or run python -m pytest from the repository root",
                    pytrace=False)
    for expr in doc_exprs():
        for name in re.findall(r"\bmailstore_spe_[a-z0-9_]+", expr):
            try:
                family_of(name)
            except KeyError as exc:
                pytest.fail(f"docs/operators.md uses {name}, not in the contract: {exc}")
