"""Writes exporter/REVISION (the git commit) into the sdist and the wheel.

Everything else is in pyproject.toml. The commit comes from MAILSTORE_SPE_EXPORTER_REVISION
(the container build passes its REVISION build argument), else from `git rev-parse HEAD`
of the tree being built, else from an exporter/REVISION already there (a wheel built from
an sdist). Without any of them no file is written and the exporter reports "unknown".
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent


def _load_revision_module():
    # exporter/__init__ imports nothing, but load the file alone: no dependency is needed.
    spec = importlib.util.spec_from_file_location("_rev", HERE / "exporter" / "revision.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build_revision() -> str | None:
    rev = _load_revision_module()
    return (
        rev._valid(os.environ.get(rev.ENV_VAR))
        or rev.git_head(HERE)
        or rev._valid((HERE / "exporter" / "REVISION").read_text(encoding="utf-8")
                      if (HERE / "exporter" / "REVISION").is_file() else None)
    )


def _write(directory: Path) -> None:
    commit = _build_revision()
    if commit:
        (directory / "exporter").mkdir(parents=True, exist_ok=True)
        (directory / "exporter" / "REVISION").write_text(commit + "\n", encoding="utf-8")


class BuildPyWithRevision(build_py):
    def run(self) -> None:
        super().run()
        _write(Path(self.build_lib))


class SdistWithRevision(sdist):
    def make_release_tree(self, base_dir, files) -> None:
        super().make_release_tree(base_dir, files)
        _write(Path(base_dir))


setup(cmdclass={"build_py": BuildPyWithRevision, "sdist": SdistWithRevision})
