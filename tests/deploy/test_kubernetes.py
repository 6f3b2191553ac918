"""deploy/kubernetes: validated offline, consistent with each other and with the exporter.

Core kinds (Deployment, Service, ConfigMap, Secret) are validated with kubernetes-validate
(the Kubernetes OpenAPI schemas it ships, strict: unknown fields are errors). It has no
schemas for the Prometheus Operator's CRDs, so ServiceMonitor and PrometheusRule get a
structural check here instead (their references to the Service, the generated rules equal
to alerts/, and `promtool check rules` on them), and the test asserts that kubernetes-validate
indeed does not know them, so this note stays true.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from exporter import cli
from exporter.config import check_config
from scripts.k8s_prometheusrule import RULES, prometheus_rule

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30.0"  # the oldest Kubernetes release still commonly supported
CORE_KINDS = {"Deployment", "Service", "ConfigMap", "Secret"}
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


def _docs() -> dict[str, dict]:
    """kind -> the one object of that kind among deploy/kubernetes/*.yaml"""
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] not in out, f"two {doc['kind']} objects"
            out[doc["kind"]] = doc | {"_file": path.name}
    return out


DOCS = _docs()


def _strip(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "_file"}


@pytest.mark.parametrize("kind", sorted(CORE_KINDS))
def test_core_kinds_are_valid_kubernetes(kind):
    kubernetes_validate.validate(_strip(DOCS[kind]), KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("kind", sorted(CRD_KINDS))
def test_kubernetes_validate_has_no_schema_for_the_crds(kind):
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(_strip(DOCS[kind]), KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_example():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == files - {"secret.example.yaml"}
    assert DOCS["Secret"]["_file"] == "secret.example.yaml"


def _container() -> dict:
    return DOCS["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def test_deployment_runs_non_root_on_a_read_only_root_filesystem():
    pod = DOCS["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    security = _container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert DOCS["Deployment"]["spec"]["replicas"] == 1  # two would poll SPE twice


def test_probes_use_the_health_endpoints_on_the_service_port():
    container = _container()
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in port_names
    service_port = DOCS["Service"]["spec"]["ports"][0]
    assert service_port["targetPort"] in port_names
    assert port_names[service_port["targetPort"]] == 9474


def test_memory_limit_covers_the_measured_peak():
    """benchmarks/RESULTS.md: peak resident memory at 5000 instances, as benchmarks/memory.py
    prints it (VmHWM and the highest sampled RSS); the limit must leave headroom above it (an
    OOM kill loses all polled data)."""
    results = (REPO / "benchmarks" / "RESULTS.md").read_text()
    matches = re.findall(
        r"RESULT instances=5000: VmHWM ([0-9.]+) MB, highest sampled RSS ([0-9.]+) MB", results
    )
    assert matches, "benchmarks/RESULTS.md has no memory.py RESULT line for 5000 instances"
    peaks = [float(x) for match in matches for x in match]  # every run quoted there
    limit = _container()["resources"]["limits"]["memory"]
    assert limit.endswith("Mi")
    assert int(limit[:-2]) * 1.048576 >= 1.25 * max(peaks), (limit, peaks)
    request = _container()["resources"]["requests"]["memory"]
    assert int(request[:-2]) <= int(limit[:-2])


def test_selectors_connect_deployment_service_and_servicemonitor():
    labels = DOCS["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert DOCS["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert DOCS["Service"]["spec"]["selector"].items() <= labels.items()
    monitor = DOCS["ServiceMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= DOCS["Service"]["metadata"][
        "labels"].items()
    service_ports = {p["name"] for p in DOCS["Service"]["spec"]["ports"]}
    assert [e["port"] for e in monitor["endpoints"]] == ["http-metrics"]
    assert service_ports == {"http-metrics"}
    assert monitor["endpoints"][0]["path"] == "/metrics"


def test_the_configmap_is_a_valid_exporter_config_reading_the_mounted_secret(tmp_path):
    container = _container()
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert container["args"] == [f"--config.file={mounts['config']['mountPath']}"]
    assert mounts["config"]["mountPath"] == str(cli.default_config_file())
    text = DOCS["ConfigMap"]["data"]["config.yml"]
    password_file = yaml.safe_load(text)["targets"]["spe1"]["password_file"]
    secret_dir = mounts["spe-password"]["mountPath"]
    key = Path(password_file).name
    assert Path(password_file).parent == Path(secret_dir)
    assert key in DOCS["Secret"]["stringData"]
    volumes = {v["name"]: v for v in DOCS["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["spe-password"]["secret"]["secretName"] == DOCS["Secret"]["metadata"]["name"]
    assert volumes["config"]["configMap"]["name"] == DOCS["ConfigMap"]["metadata"]["name"]
    # the config as the pod sees it, with the Secret's file at a local path
    (tmp_path / key).write_text(DOCS["Secret"]["stringData"][key])
    (tmp_path / key).chmod(0o440)
    config = tmp_path / "config.yml"
    config.write_text(text.replace(secret_dir, str(tmp_path)))
    config.chmod(0o600)
    ok, message = check_config(config)
    assert ok, message


def test_the_prometheusrule_is_generated_from_alerts():
    generated = prometheus_rule(RULES.read_text())
    assert (K8S / "prometheusrule.yaml").read_text() == generated, (
        "deploy/kubernetes/prometheusrule.yaml is out of date: "
        "run .venv/bin/python scripts/k8s_prometheusrule.py")
    rule = DOCS["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_promtool_accepts_the_prometheusrule_groups(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run scripts/test.sh", pytrace=False)
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": DOCS["PrometheusRule"]["spec"]["groups"]}))
    proc = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
