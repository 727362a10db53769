"""deploy/k8s manifests agree with the code: worker queues, one beat, probes and resources everywhere,
secrets only through secretKeyRef, real setting names, and KEDA triggers on lanes and queues that exist.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from dispatcher.queue import GROUP, Lanes
from dispatcher.settings import Settings
from tests.deploy.test_compose import settings_env_names
from workers.queues import ALL_QUEUES, LANE_QUEUES, ROLE_QUEUES

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
NAMESPACE = "smspoint"
SECRET = "smspoint-secrets"
CONFIGMAP = "smspoint-config"
WORKERS = {"otp": "smspoint-worker-otp", "bulk": "smspoint-worker-bulk"}
BEAT = "smspoint-beat"
API = "smspoint-api"
API_COMMAND = ["smsdispatch", "api", "--host", "0.0.0.0", "--port", "8080"]
BEAT_COMMAND = ["celery", "-A", "workers.app", "beat"]
SIMULATOR_COMMAND = ["smsdispatch", "simulator", "--host", "0.0.0.0", "--port", "8765"]
SECRET_NAME = re.compile(r"(_KEY|PASSWORD|SECRET|TOKEN|AUTH)$")
#: Settings whose values carry credentials: only ever from the Secret.
CREDENTIAL_URLS = {"REDIS_URL", "DATABASE_URL", "BROKER_URL"}
CLUSTER_SCOPED = {"Namespace", "Kustomization"}

Doc = dict[str, Any]


# ----------------------------------------------------------------------------- helpers


def load_docs() -> list[tuple[str, Doc]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((str(path.relative_to(K8S)), doc))
    return docs


@pytest.fixture(scope="module")
def docs() -> list[tuple[str, Doc]]:
    return load_docs()


def of_kind(docs: list[tuple[str, Doc]], kind: str) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for _, doc in docs if doc.get("kind") == kind}


def pod_spec(workload: Doc) -> Doc:
    return workload["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def containers(workload: Doc) -> list[Doc]:
    spec = pod_spec(workload)
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def all_containers(docs: list[tuple[str, Doc]]) -> list[tuple[str, Doc]]:
    workloads = {**of_kind(docs, "Deployment"), **of_kind(docs, "Job")}
    return [(name, c) for name, w in workloads.items() for c in containers(w)]


def option(command: list[str], flag: str) -> str:
    assert flag in command, f"{flag} missing from {command}"
    return command[command.index(flag) + 1]


def setting(docs: list[tuple[str, Doc]], env_name: str) -> str:
    """A setting as the pods see it: the ConfigMap's value, else the Settings default."""
    data = of_kind(docs, "ConfigMap")[CONFIGMAP]["data"]
    return str(data.get(env_name, Settings.model_fields[env_name.lower()].default))


def probe_text(probe: Doc) -> str:
    return " ".join(probe["exec"]["command"])


# ----------------------------------------------------------------------------- structure


def test_every_manifest_parses_and_is_namespaced(docs: list[tuple[str, Doc]]) -> None:
    """Every YAML document parses, names its kind, and (namespaced kinds) lives in the smspoint namespace."""
    assert len(docs) >= 15
    for filename, doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), filename
        if doc["kind"] in ("Kustomization", "Component"):
            continue
        assert doc["metadata"]["name"], filename
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{filename}: {doc['metadata']['name']}"


def test_expected_objects_exist(docs: list[tuple[str, Doc]]) -> None:
    """Namespace, ConfigMap, Secret template, every Deployment, the migration Job, Services, ScaledObjects."""
    assert NAMESPACE in of_kind(docs, "Namespace")
    assert CONFIGMAP in of_kind(docs, "ConfigMap")
    assert SECRET in of_kind(docs, "Secret")
    expected = {*WORKERS.values(), BEAT, "smspoint-flower", "smspoint-metrics", "smspoint-simulator", API}
    assert set(of_kind(docs, "Deployment")) == expected
    assert "smspoint-migrate" in of_kind(docs, "Job")
    assert {"smspoint-flower", "smspoint-metrics", "smspoint-simulator", API} <= set(of_kind(docs, "Service"))
    assert set(of_kind(docs, "HorizontalPodAutoscaler")) == {API}
    assert set(of_kind(docs, "ScaledObject")) == set(WORKERS.values())


def test_kustomization_lists_existing_files(docs: list[tuple[str, Doc]]) -> None:
    """kustomization.yaml names only files that exist, and never the Secret template."""
    kustomization = next(doc for _, doc in docs if doc["kind"] == "Kustomization")
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    assert "secret.template.yaml" not in kustomization["resources"]


def test_services_select_their_deployments(docs: list[tuple[str, Doc]]) -> None:
    """Each Service selects the pods of a Deployment and targets a port that container exposes."""
    deployments = of_kind(docs, "Deployment")
    for name, service in of_kind(docs, "Service").items():
        selector = service["spec"]["selector"]
        matching = [d for d in deployments.values()
                    if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matching) == 1, name
        exposed = {p["containerPort"] for c in containers(matching[0]) for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= exposed, name


def test_one_image_everywhere(docs: list[tuple[str, Doc]]) -> None:
    """Every container runs the same dispatcher image."""
    images = {c["image"] for _, c in all_containers(docs)}
    assert len(images) == 1


# ----------------------------------------------------------------------------- workers and beat


@pytest.mark.parametrize("role", sorted(WORKERS))
def test_worker_queues_are_the_role_queues(docs: list[tuple[str, Doc]], role: str) -> None:
    """Each worker Deployment's -Q list is exactly ROLE_QUEUES[role], with node name role@%h."""
    (container,) = containers(of_kind(docs, "Deployment")[WORKERS[role]])
    command = container["command"]
    assert command[:4] == ["celery", "-A", "workers.app", "worker"]
    assert tuple(option(command, "-Q").split(",")) == ROLE_QUEUES[role]
    assert option(command, "-n") == f"{role}@%h"


def test_workers_together_consume_every_queue(docs: list[tuple[str, Doc]]) -> None:
    """No declared queue is left without a consumer in the cluster."""
    deployments = of_kind(docs, "Deployment")
    consumed = {q for name in WORKERS.values() for c in containers(deployments[name])
                for q in option(c["command"], "-Q").split(",")}
    assert consumed == set(ALL_QUEUES)


def test_exactly_one_beat(docs: list[tuple[str, Doc]]) -> None:
    """Only the beat Deployment runs celery beat: replicas 1, Recreate, not autoscaled; no worker uses -B."""
    runs_beat = [name for name, c in all_containers(docs) if c["command"][:4] == BEAT_COMMAND]
    assert runs_beat == [BEAT]
    beat = of_kind(docs, "Deployment")[BEAT]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    scaled = {doc["spec"]["scaleTargetRef"]["name"] for kind in ("ScaledObject", "HorizontalPodAutoscaler")
              for doc in of_kind(docs, kind).values()}
    assert BEAT not in scaled
    for name, c in all_containers(docs):
        assert "-B" not in c["command"] and "--beat" not in c["command"], name


def test_commands_match_the_cli(docs: list[tuple[str, Doc]]) -> None:
    """Migration, Flower, exporter and simulator run the smsdispatch commands the CLI provides."""
    commands = {name: c["command"] for name, c in all_containers(docs)}
    assert commands["smspoint-migrate"] == ["smsdispatch", "db", "upgrade"]
    assert commands["smspoint-flower"] == ["smsdispatch", "flower", "--address", "0.0.0.0"]
    assert commands["smspoint-metrics"] == ["smsdispatch", "metrics", "--port", "9808"]
    assert commands["smspoint-simulator"] == SIMULATOR_COMMAND


# ----------------------------------------------------------------------------- probes, resources, security


def test_every_deployment_container_has_probes(docs: list[tuple[str, Doc]]) -> None:
    """Every long-running container has a readiness and a liveness probe."""
    for name, deployment in of_kind(docs, "Deployment").items():
        for c in containers(deployment):
            assert c.get("readinessProbe") and c.get("livenessProbe"), f"{name}/{c['name']}"


@pytest.mark.parametrize("role", sorted(WORKERS))
def test_worker_probes_ping_their_own_node(docs: list[tuple[str, Doc]], role: str) -> None:
    """Worker probes run `celery inspect ping` against the pod's own node name (role@$HOSTNAME)."""
    (container,) = containers(of_kind(docs, "Deployment")[WORKERS[role]])
    for kind in ("readinessProbe", "livenessProbe"):
        text = probe_text(container[kind])
        assert "celery -A workers.app inspect ping" in text, kind
        assert f'-d "{role}@$HOSTNAME"' in text, kind


@pytest.mark.parametrize(("deployment", "path", "port"), [
    ("smspoint-flower", "/healthcheck", 5555),
    ("smspoint-metrics", "/metrics", 9808),
    ("smspoint-simulator", "/_sim/health", 8765),
])
def test_http_probes(docs: list[tuple[str, Doc]], deployment: str, path: str, port: int) -> None:
    """Flower, the exporter and the simulator are probed over HTTP on the port the container exposes."""
    (container,) = containers(of_kind(docs, "Deployment")[deployment])
    assert port in {p["containerPort"] for p in container["ports"]}
    for kind in ("readinessProbe", "livenessProbe"):
        assert container[kind]["httpGet"] == {"path": path, "port": port}, kind


def test_every_container_has_requests_and_limits(docs: list[tuple[str, Doc]]) -> None:
    """Every container (Deployments and the Job) sets cpu and memory requests and limits."""
    found = all_containers(docs)
    assert found
    for name, c in found:
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][bound]), f"{name}: {bound}"


def test_pods_run_unprivileged(docs: list[tuple[str, Doc]]) -> None:
    """Every pod runs as a non-root user without privilege escalation."""
    workloads = {**of_kind(docs, "Deployment"), **of_kind(docs, "Job")}
    for name, workload in workloads.items():
        assert pod_spec(workload)["securityContext"]["runAsNonRoot"] is True, name
        for c in containers(workload):
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, name


# ----------------------------------------------------------------------------- settings and secrets


def test_secrets_come_from_secret_key_refs(docs: list[tuple[str, Doc]]) -> None:
    """Keys, passwords and credential URLs reach containers only via secretKeyRef to keys the Secret has."""
    secret_keys = set(of_kind(docs, "Secret")[SECRET]["stringData"])
    refs = 0
    for name, c in all_containers(docs):
        for env in c.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if SECRET_NAME.search(env["name"]) or env["name"] in CREDENTIAL_URLS:
                assert "value" not in env and ref, f"{name}: {env['name']} is not a secretKeyRef"
            if ref:
                refs += 1
                assert ref["name"] == SECRET and ref["key"] in secret_keys, f"{name}: {env['name']}"
        for source in c.get("envFrom", []):
            assert "secretRef" not in source, f"{name}: pass secrets one by one"
    assert refs


def test_secret_template_holds_only_placeholders(docs: list[tuple[str, Doc]]) -> None:
    """The Secret template has every needed key and only REPLACE_ME placeholder values."""
    secret = of_kind(docs, "Secret")[SECRET]
    assert "data" not in secret
    data = secret["stringData"]
    assert {"SMSPOINT_API_KEY", "REDIS_PASSWORD", "REDIS_URL", "DATABASE_URL", "FLOWER_PASSWORD",
            "WEBHOOK_SECRET"} <= set(data)
    for key, value in data.items():
        assert "REPLACE_ME" in value, key


def test_configmap_holds_no_secrets(docs: list[tuple[str, Doc]]) -> None:
    """The ConfigMap has no key, password or credential URL."""
    data = of_kind(docs, "ConfigMap")[CONFIGMAP]["data"]
    for key, value in data.items():
        assert not SECRET_NAME.search(key) and key not in CREDENTIAL_URLS, key
        assert not re.search(r"://[^/@]*@", str(value)), key


def test_env_names_are_settings_fields(docs: list[tuple[str, Doc]]) -> None:
    """Every variable a container gets (ConfigMap keys and env entries) is a Settings field or alias."""
    known = settings_env_names()
    names = set(of_kind(docs, "ConfigMap")[CONFIGMAP]["data"])
    names |= {env["name"] for _, c in all_containers(docs) for env in c.get("env", [])}
    assert names <= known, sorted(names - known)
    for name, c in all_containers(docs):
        for source in c.get("envFrom", []):
            assert source["configMapRef"]["name"] == CONFIGMAP, name


def test_configmap_values_are_valid_settings(docs: list[tuple[str, Doc]],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings accepts every value in the ConfigMap."""
    for name in settings_env_names():
        monkeypatch.delenv(name, raising=False)
    for key, value in of_kind(docs, "ConfigMap")[CONFIGMAP]["data"].items():
        monkeypatch.setenv(key, str(value))
    Settings(_env_file=None)  # type: ignore[call-arg]


# ----------------------------------------------------------------------------- KEDA


def redis_triggers(scaled: Doc, kind: str) -> list[Doc]:
    return [t for t in scaled["spec"]["triggers"] if t["type"] == kind]


@pytest.mark.parametrize("role", sorted(WORKERS))
def test_keda_triggers_watch_the_worker_lanes(docs: list[tuple[str, Doc]], role: str) -> None:
    """A worker scales on the lane streams (group collectors) and Celery queue lists of exactly its lanes."""
    scaled = of_kind(docs, "ScaledObject")[WORKERS[role]]
    assert scaled["spec"]["scaleTargetRef"]["name"] in of_kind(docs, "Deployment")
    assert scaled["spec"]["minReplicaCount"] >= 1
    lanes = [lane for lane, queue in LANE_QUEUES.items() if queue in ROLE_QUEUES[role]]
    assert lanes
    lane_keys = Lanes(None, setting(docs, "REDIS_PREFIX"))  # type: ignore[arg-type]  # naming only, no I/O
    streams = redis_triggers(scaled, "redis-streams")
    assert {t["metadata"]["stream"] for t in streams} == {lane_keys.stream(lane) for lane in lanes}
    for trigger in streams:
        assert trigger["metadata"]["consumerGroup"] == GROUP
        assert int(trigger["metadata"]["lagCount"]) > 0
    lists = redis_triggers(scaled, "redis")
    prefix = setting(docs, "BROKER_KEY_PREFIX")
    assert {t["metadata"]["listName"] for t in lists} == {prefix + LANE_QUEUES[lane] for lane in lanes}
    assert len(scaled["spec"]["triggers"]) == len(streams) + len(lists)


def test_keda_reads_the_redis_the_app_uses(docs: list[tuple[str, Doc]]) -> None:
    """Every trigger's address and database match REDIS_URL; it authenticates with REDIS_URL's password."""
    secret = of_kind(docs, "Secret")[SECRET]["stringData"]
    url = urlsplit(secret["REDIS_URL"])
    assert url.password == secret["REDIS_PASSWORD"]
    auths = of_kind(docs, "TriggerAuthentication")
    for name, scaled in of_kind(docs, "ScaledObject").items():
        for trigger in scaled["spec"]["triggers"]:
            meta = trigger["metadata"]
            assert meta["address"] == f"{url.hostname}:{url.port}", name
            assert meta["databaseIndex"] == (url.path.strip("/") or "0"), name
            auth = auths[trigger["authenticationRef"]["name"]]
            for target in auth["spec"]["secretTargetRef"]:
                assert target["name"] == SECRET and target["key"] in secret, name


# ----------------------------------------------------------------------------- the HTTP API


def test_api_runs_the_cli_command_with_http_probes(docs: list[tuple[str, Doc]]) -> None:
    """The API pod runs `smsdispatch api` on 8080; readiness /readyz (database, Redis), liveness /healthz."""
    (container,) = containers(of_kind(docs, "Deployment")[API])
    assert container["command"][:len(API_COMMAND)] == API_COMMAND
    assert 8080 in {p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}


def test_api_is_scaled_by_its_autoscaler(docs: list[tuple[str, Doc]]) -> None:
    """The HorizontalPodAutoscaler targets the API Deployment (which sets no replicas of its own) on CPU,
    and the Deployment requests CPU (utilization is a share of the request)."""
    hpa = of_kind(docs, "HorizontalPodAutoscaler")[API]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", API)
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"} == {"cpu"}
    deployment = of_kind(docs, "Deployment")[API]
    assert "replicas" not in deployment["spec"]
    (container,) = containers(deployment)
    assert container["resources"]["requests"]["cpu"]
    kustomization = next(doc for _, doc in docs if doc["kind"] == "Kustomization")
    assert "api.yaml" in kustomization["resources"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_migration_job_runs_the_image_the_workloads_run(tmp_path: Path) -> None:
    """`kubectl apply -k deploy/k8s/migrate` and `-k deploy/k8s` render the same image, and a new image set
    in the one place (the image component) reaches the Job and every Deployment alike."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    component = copy / "image" / "kustomization.yaml"
    component.write_text(component.read_text().replace('newTag: "0.1.0"', 'newTag: "9.9.9-test"'))
    images: dict[str, set[str]] = {}
    for name, folder in (("workloads", copy), ("migrate", copy / "migrate")):
        out = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True,
                             check=True).stdout
        workloads = [d for d in yaml.safe_load_all(out) if d and d["kind"] in ("Deployment", "Job")]
        images[name] = {c["image"] for d in workloads for c in d["spec"]["template"]["spec"]["containers"]}
    assert images["workloads"] == images["migrate"] == {"registry.example.com/smspoint-dispatcher:9.9.9-test"}
