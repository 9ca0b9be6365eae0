"""The Kubernetes manifests in deploy/k8s: they parse, kustomize lists them, every service runs
with probes on /healthz, a non-root read-only container and a graceful drain, and every
setting comes from the ConfigMap or the Secret (no secret literal but obvious placeholders)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shared.config.settings import Settings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SERVICES = ("intake", "eligibility", "ledger", "notify")
SECRET_KEYS = {"GRANTLINE_OPERATOR_TOKEN", "GRANTLINE_AUDITOR_TOKEN", "GRANTLINE_WEBHOOK_SIGNING_KEY",
               "GRANTLINE_TRANSPARENCY_KEY"}
# One DSN per database role (README "Database roles"): each service reads only its own.
DB_KEYS = {"ADMIN_DATABASE_URL", "MIGRATION_DATABASE_URL",
           *(f"{s.upper()}_DATABASE_URL" for s in ("intake", "eligibility", "ledger", "notify"))}
SECRETISH = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|DATABASE_URL", re.I)
CREDENTIALS_IN_URL = re.compile(r"://[^/@\s]+:[^/@\s]+@")
PLACEHOLDER = "REPLACE_ME"
MIGRATE = ["sh", "deploy/migrate.sh"]


def documents() -> dict[str, list[dict[str, Any]]]:
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
        for path in sorted(K8S.glob("*.yaml"))
    }


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for docs in documents().values() for d in docs if d["kind"] == kind}


def setting_names() -> set[str]:
    """Every environment name the services read (Settings fields with the prefix, and the aliases)."""
    return {f"GRANTLINE_{name.upper()}" for name in Settings.model_fields} | {
        "DATABASE_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
    }


def pod_specs() -> dict[str, dict[str, Any]]:
    specs = {name: d["spec"]["template"]["spec"] for name, d in of_kind("Deployment").items()}
    specs |= {name: d["spec"]["template"]["spec"] for name, d in of_kind("Job").items()}
    return specs


def test_every_manifest_parses_and_kustomize_lists_all_but_the_secret_template() -> None:
    docs = documents()
    assert docs, "no manifests in deploy/k8s"
    for name, items in docs.items():
        assert items, f"{name} is empty"
        for doc in items:
            assert {"apiVersion", "kind"} <= set(doc), name
            if doc["kind"] != "Kustomization":
                assert doc["metadata"]["name"], name
    [kustomization] = docs["kustomization.yaml"]
    assert kustomization["namespace"] == "grantline"
    listed = set(kustomization["resources"])
    assert listed == set(docs) - {"kustomization.yaml", "secret.example.yaml"}
    assert [i["name"] for i in kustomization["images"]] == ["grantline"]
    assert set(of_kind("Namespace")) == {"grantline"}


def test_four_deployments_of_two_replicas_each_with_a_service() -> None:
    deployments, services = of_kind("Deployment"), of_kind("Service")
    assert set(deployments) == set(services) == set(SERVICES)
    for name, d in deployments.items():
        assert d["spec"]["replicas"] == 2, name
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert d["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        assert services[name]["spec"]["selector"].items() <= labels.items(), name
        [container] = d["spec"]["template"]["spec"]["containers"]
        assert container["image"] == "grantline", name
        assert {"name": "SERVICE", "value": name} in container["env"], name
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": 8000}, name
        assert [p["targetPort"] for p in services[name]["spec"]["ports"]] == ["http"], name


@pytest.mark.parametrize("name", SERVICES)
def test_deployment_probes_resources_security_and_drain(name: str) -> None:
    spec = of_kind("Deployment")[name]["spec"]["template"]["spec"]
    [container] = spec["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": 8000}, (name, probe)
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # /tmp stays writable on a read-only root filesystem.
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # The preStop sleep, then the service's own drain (up to 10 s for tasks), within the grace period.
    assert spec["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + 15


def test_migration_job_runs_migrations_then_topics() -> None:
    [job] = of_kind("Job").values()
    spec = job["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert container["command"] == MIGRATE
    script = (K8S.parent / "migrate.sh").read_text()
    steps = [line for line in script.splitlines() if line.strip().startswith("python -m")]
    assert steps == ["  python -m shared.db.roles", "python -m shared.db.migrate", "python -m shared.messaging.topics"]
    assert spec["restartPolicy"] in {"OnFailure", "Never"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_settings_come_from_the_configmap_and_the_secret_never_from_literals() -> None:
    for name, spec in pod_specs().items():
        for container in spec["containers"]:
            sources = {
                ("configMapRef" if "configMapRef" in s else "secretRef"): next(iter(s.values()))["name"]
                for s in container["envFrom"]
            }
            assert sources == {"configMapRef": "grantline-config", "secretRef": "grantline-secrets"}, name
            for var in container.get("env", []):
                # Only non-secret literals (SERVICE); anything secret comes from a Secret.
                if "valueFrom" in var:
                    ref = var["valueFrom"]["secretKeyRef"]
                    assert ref["name"] == "grantline-db" and ref["key"] in DB_KEYS, (name, var)
                    continue
                assert not SECRETISH.search(var["name"]), (name, var)
                assert not CREDENTIALS_IN_URL.search(str(var["value"])), (name, var)
        if name in SERVICES:
            [container] = spec["containers"]
            db = [v["valueFrom"]["secretKeyRef"]["key"] for v in container.get("env", []) if "valueFrom" in v]
            assert db == [f"{name.upper()}_DATABASE_URL"], f"{name} reads its own role's DSN and no other"

    [config] = of_kind("ConfigMap").values()
    for key, value in config["data"].items():
        assert key in setting_names(), f"the ConfigMap sets {key}, which no service reads"
        assert not SECRETISH.search(key), f"{key} belongs in the Secret"
        assert isinstance(value, str), f"{key}: ConfigMap values must be strings"
        assert not CREDENTIALS_IN_URL.search(value), key


def test_the_secret_is_a_template_of_placeholders() -> None:
    template, db = documents()["secret.example.yaml"]
    assert template["kind"] == "Secret" and template["metadata"]["name"] == "grantline-secrets"
    data = template["stringData"]
    assert set(data) == SECRET_KEYS
    assert set(data) <= setting_names()
    for key, value in data.items():
        assert value == PLACEHOLDER, f"{key} must be a placeholder in the template"
    assert db["kind"] == "Secret" and db["metadata"]["name"] == "grantline-db"
    assert set(db["stringData"]) == DB_KEYS
    for key, value in db["stringData"].items():
        assert urlsplit(value).password == PLACEHOLDER, f"{key}: the template's database password is a placeholder"
    assert "create secret generic grantline-secrets" in (K8S / "secret.example.yaml").read_text()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kustomize_renders() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(out) if d)
    assert kinds == sorted(["Namespace", "ConfigMap", "Job", *["Deployment"] * 4, *["Service"] * 4])
    assert "grantline-secrets" in out and PLACEHOLDER not in out
