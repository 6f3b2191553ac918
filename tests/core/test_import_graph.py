"""The import graph: every arrow points down a floor (or stays on one), and no cycles.

Read statically with ``ast`` (imports under ``TYPE_CHECKING`` and inside functions count
too: an arrow is an arrow). The floors, bottom first, are the layout of docs/design.md:
a module of floor N imports only modules of floors <= N. A new module must be given a
floor here (modules of the collectors, spe and config packages get theirs by prefix).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "exporter"

# Bottom first. A name ending in "." stands for every module below that package.
FLOORS: tuple[tuple[str, ...], ...] = (
    # what every floor may use: the version, metric definitions, samples, process set-up
    ("exporter", "exporter.metricdefs", "exporter.samples", "exporter.allocator",
     "exporter.logsetup", "exporter.revision"),
    ("exporter.spe", "exporter.spe."),  # talking to SPE
    ("exporter.collectors", "exporter.collectors."),  # SPE results -> samples
    ("exporter.config", "exporter.config."),  # the config (collector keys from collectors)
    # samples -> rendered blocks and their keeping; the exporter's own series
    ("exporter.groups", "exporter.gzipstitch", "exporter.exposition", "exporter.snapshot",
     "exporter.telemetry", "exporter.health", "exporter.runtime"),
    ("exporter.maintenance", "exporter.scheduler"),  # running collectors and maintenance
    ("exporter.app", "exporter.web", "exporter.webconfig", "exporter.weblimits",
     "exporter.webrequest"),  # wiring, HTTP
    ("exporter.cli", "exporter.__main__"),  # the command line (demo mode: the simulator)
)
SIMULATOR = "exporter.simulator"  # an island: imports only itself; only cli imports it


def _module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


MODULES = _module_names()


def _imports(name: str) -> set[str]:
    """Exporter modules ``name`` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                full = f"{module}.{alias.name}"
                found.add(full if full in MODULES else module)
    return {m for m in found if m in MODULES and m != name}


def floor_of(name: str) -> int | None:
    for number, members in enumerate(FLOORS):
        for member in members:
            if name == member or (member.endswith(".") and name.startswith(member)):
                return number
    return None


GRAPH = {name: _imports(name) for name in MODULES}


def test_every_module_has_a_floor():
    missing = sorted(
        n for n in MODULES if not n.startswith(SIMULATOR) and floor_of(n) is None
    )
    assert missing == [], "give these modules a floor in FLOORS"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.startswith(SIMULATOR)))
def test_no_upward_import(name):
    own = floor_of(name)
    assert own is not None
    upward = []
    for target in sorted(GRAPH[name]):
        if target.startswith(SIMULATOR):
            if name != "exporter.cli":
                upward.append(f"{target} (only exporter.cli may use the simulator)")
            continue
        level = floor_of(target)
        if level is None or level > own:
            upward.append(f"{target} (floor {level} > {own})")
    assert upward == []


def test_the_simulator_imports_only_itself():
    for name in (n for n in MODULES if n.startswith(SIMULATOR)):
        outside = {t for t in GRAPH[name] if not t.startswith(SIMULATOR)}
        assert outside == set(), name


def test_no_import_cycle():
    # Package __init__ modules that only re-export their submodules would make every
    # "from pkg.sub import x" look like a cycle through pkg: follow real modules only.
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(GRAPH[name]):
            if name.startswith(f"{target}."):
                continue  # a module importing its own package's __init__
            if state.get(target) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path, name, target]))
            if target not in state:
                visit(target, [*path, name])
        state[name] = 2

    for name in sorted(MODULES):
        if name not in state:
            visit(name, [])


def test_the_graph_reader_sees_type_checking_and_relative_imports():
    # If the reader missed these, the tests above could pass on a broken graph.
    assert "exporter.spe.client" in GRAPH["exporter.collectors.base"]  # TYPE_CHECKING
    assert "exporter.simulator.state" in GRAPH["exporter.simulator.simulator"]  # relative
    assert "exporter.samples" in GRAPH["exporter.exposition"]


def test_samples_are_made_only_by_the_builder():
    """Collectors, health and telemetry get label checks and sample names from
    ``SampleBuilder``: nothing else in the exporter constructs a ``Sample``."""
    makers = []
    for name, path in MODULES.items():
        if name == "exporter.samples":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Sample":
                makers.append(f"{name}:{node.lineno}")
    assert makers == []
