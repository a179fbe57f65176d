"""deploy/kubernetes: rendered by ``kubectl kustomize`` and validated against Kubernetes' schemas.

There is no cluster here: kubectl (Debian's ``kubectl``) only renders, and the PyPI package
``kubernetes-validate`` checks every object strictly (unknown fields are errors). These tests fail,
not skip, without kubectl, so CI cannot pass them by accident.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.32.0"
PROBE = ["mlpq", "workers", "--self", "--timeout", "10"]


def render(overlay: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not on PATH: install it (scripts/services.sh, `apt-get install kubectl`)", pytrace=False)
    done = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def everything() -> dict[tuple[str, str], dict[str, Any]]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in render(KUBERNETES)}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


@pytest.mark.parametrize("overlay", [KUBERNETES, KUBERNETES / "managed"], ids=["in-cluster", "managed"])
def test_every_rendered_object_is_valid_kubernetes(overlay: Path) -> None:
    objects = render(overlay)
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)  # raises ValidationError


def test_the_validation_would_catch_a_misspelt_field(everything: dict[tuple[str, str], dict[str, Any]]) -> None:
    broken = yaml.safe_load(yaml.safe_dump(everything["Deployment", "mlpq-worker-cpu"]))
    pod_spec(broken)["terminationGracePeriod"] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_in_cluster_and_managed_differ_only_by_redis_and_postgres(
        everything: dict[tuple[str, str], dict[str, Any]]) -> None:
    managed = {(doc["kind"], doc["metadata"]["name"]) for doc in render(KUBERNETES / "managed")}
    assert set(everything) - managed == {("StatefulSet", "redis"), ("StatefulSet", "postgres"),
                                         ("Service", "redis"), ("Service", "postgres"), ("Secret", "mlpq-services")}
    assert managed == {("Namespace", "mlpq"), ("Secret", "mlpq-urls"), ("PersistentVolumeClaim", "mlpq-data"),
                       ("Job", "mlpq-db-upgrade"), ("Deployment", "mlpq-worker-cpu"),
                       ("Deployment", "mlpq-worker-gpu")}
    assert all(doc["metadata"].get("namespace") == "mlpq" for key, doc in everything.items() if key[0] != "Namespace")


def test_the_urls_come_from_one_secret(everything: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert set(everything["Secret", "mlpq-urls"]["stringData"]) == {"MLPQ_BROKER_URL", "MLPQ_DATABASE_URL"}
    for key in [("Deployment", "mlpq-worker-cpu"), ("Deployment", "mlpq-worker-gpu"), ("Job", "mlpq-db-upgrade")]:
        [container] = pod_spec(everything[key])["containers"]
        assert container["envFrom"] == [{"secretRef": {"name": "mlpq-urls"}}]


@pytest.mark.parametrize("name, command, gpus", [
    ("mlpq-worker-cpu", ["mlpq", "worker", "--device", "cpu"], None),
    ("mlpq-worker-gpu", ["mlpq", "worker", "--device", "cuda:0", "--gpu-index", "0"], 1),
])
def test_workers_shut_down_warm_probe_themselves_and_share_the_data_volume(
        everything: dict[tuple[str, str], dict[str, Any]], name: str, command: list[str], gpus: int | None) -> None:
    spec = pod_spec(everything["Deployment", name])
    [container] = spec["containers"]
    assert container["command"] == command
    assert container["resources"]["limits"].get("nvidia.com/gpu") == gpus
    assert spec["terminationGracePeriodSeconds"] >= 600
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["exec"]["command"] == PROBE
    assert {"name": "MLPQ_DATA_DIR", "value": "/data"} in container["env"]
    assert {"name": "MLPQ_ALLOW_COMMANDS", "value": ""} in container["env"]  # no command jobs unless set
    assert container["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert spec["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "mlpq-data"}}]
    assert container["image"] == "mlpq:latest"


def test_the_data_volume_is_shared_by_every_worker_pod(everything: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert everything["PersistentVolumeClaim", "mlpq-data"]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_a_one_shot_job_migrates_the_ledger(everything: dict[tuple[str, str], dict[str, Any]]) -> None:
    job = everything["Job", "mlpq-db-upgrade"]
    [container] = pod_spec(job)["containers"]
    assert container["command"] == ["mlpq", "db", "upgrade"]
    assert pod_spec(job)["restartPolicy"] == "OnFailure"


def test_every_pod_runs_as_non_root(everything: dict[tuple[str, str], dict[str, Any]]) -> None:
    pods = {key: pod_spec(obj) for key, obj in everything.items() if key[0] in ("Deployment", "StatefulSet", "Job")}
    assert len(pods) == 5
    for key, spec in pods.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, key
        assert spec["securityContext"]["runAsUser"] != 0, key
        for container in spec["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, key


def test_the_probe_is_a_real_command() -> None:
    from click.testing import CliRunner

    from mlpq.api_cli.cli import cli

    result = CliRunner().invoke(cli, [*PROBE[1:], "--help"])
    assert result.exit_code == 0 and "--self" in result.output
