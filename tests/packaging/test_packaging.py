"""Build the sdist and the wheel (as a release would) and check what they carry.

The build runs without isolation (`python -m build --no-isolation`) so it needs no package
index: `build` and `setuptools>=77` come with the test extras. It builds from a copy of the
files git tracks, so a file that exists only in this work tree cannot hide a MANIFEST gap,
and the wheel is built from the sdist, as pip does from PyPI.
"""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from exporter import __version__

REPO = Path(__file__).resolve().parents[2]
NAME = "mailstore_spe_exporter"
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # as a container build passes it
# What an operator needs next to the package (issue: the sdist left these out).
OPERATOR_DIRS = ("dashboards", "alerts", "docs", "deploy")
OPERATOR_FILES = ("LICENSE", "CHANGELOG.md", "README.md", "config.example.yml", "Dockerfile")


def _tracked() -> list[str]:
    if shutil.which("git") is None:
        pytest.fail("git is needed to list the tracked files", pytrace=False)
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    return [p for p in out.stdout.decode().split("\0") if p and (REPO / p).is_file()]


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    src = tmp_path_factory.mktemp("src")
    for rel in _tracked():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, src / rel)
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "MAILSTORE_SPE_EXPORTER_REVISION": COMMIT},
    )
    assert proc.returncode == 0, f"build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    found = {p.suffix: p for p in out.iterdir()}
    return {"sdist": found[".gz"], "wheel": found[".whl"], "log": proc.stdout + proc.stderr}


def _sdist_names(sdist: Path) -> set[str]:
    with tarfile.open(sdist) as tar:
        prefix = f"{NAME}-{__version__}/"
        return {m.name.removeprefix(prefix) for m in tar.getmembers() if m.isfile()}


def test_the_sdist_carries_the_operator_files(dists):
    names = _sdist_names(dists["sdist"])
    print("\n".join(sorted(names)))  # the listing, for whoever reads the test log (-s)
    for rel in OPERATOR_FILES:
        assert rel in names, rel
    tracked = _tracked()
    for directory in OPERATOR_DIRS:
        wanted = {p for p in tracked if p.startswith(directory + "/")}
        assert wanted, f"nothing tracked under {directory}/"
        assert wanted <= names, f"{directory}: missing from the sdist: {sorted(wanted - names)}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_wheel_carries_the_package_its_data_and_the_licence(dists):
    with zipfile.ZipFile(dists["wheel"]) as whl:
        names = set(whl.namelist())
        print("\n".join(sorted(names)))
        dist_info = f"{NAME}-{__version__}.dist-info"
        metadata = email.parser.Parser().parsestr(whl.read(f"{dist_info}/METADATA").decode())
        entry_points = whl.read(f"{dist_info}/entry_points.txt").decode()
    package = {p for p in _tracked() if p.startswith("exporter/") and not p.endswith(".md")}
    assert package <= names, f"missing from the wheel: {sorted(package - names)}"
    assert any(n.startswith("exporter/simulator/scenarios/") for n in names)
    assert f"{dist_info}/licenses/LICENSE" in names
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "benchmarks/"))]
    # PEP 639: an SPDX expression, not the deprecated free-text License field
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License"] is None
    assert "mailstore-spe-exporter = exporter.cli:main" in entry_points
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requires = {str(Requirement(r)) for r in metadata.get_all("Requires-Dist")}
    for dependency in project["dependencies"]:
        assert str(Requirement(dependency)) in requires, dependency


def test_the_build_gives_no_licence_deprecation_warning(dists):
    assert "License classifiers are deprecated" not in dists["log"]
    assert "project.license` as a TOML table is deprecated" not in dists["log"]


def test_the_licence_is_the_apache_2_text():
    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0")
    assert "END OF TERMS AND CONDITIONS" in text
    assert len(text.splitlines()) == 202


def test_the_build_records_the_git_commit_for_the_build_info(dists):
    """setup.py writes exporter/REVISION into both (the wheel here is built from the sdist,
    whose tree has no .git: the commit travels in the file)."""
    with tarfile.open(dists["sdist"]) as tar:
        member = tar.extractfile(f"{NAME}-{__version__}/exporter/REVISION")
        assert member.read().decode().strip() == COMMIT
    with zipfile.ZipFile(dists["wheel"]) as whl:
        assert whl.read("exporter/REVISION").decode().strip() == COMMIT
