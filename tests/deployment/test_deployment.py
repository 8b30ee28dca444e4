"""The deployment artifacts: Kubernetes manifests (docker/k8s), the compose file and the Dockerfile.

Each manifest is validated against the Kubernetes API schemas (offline, strict: unknown fields fail), and the
pieces are checked against each other and against the app: probes and the scrape path are routes that
answer, ports line up, selectors match, every setting named is one the service reads, every command is one
the CLI accepts. `docker compose config` runs when the compose plugin is installed (`scripts/compose.sh`);
without it those tests skip, unless CDS_REQUIRE_COMPOSE=1 (as in CI) makes that a failure.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from cds_service.auth.clients import load_trusted_clients
from cds_service.cli import parser as cli_parser
from cds_service.config import Settings
from cds_service.web.routes import ROUTES

from support.fhir_server import free_port, serving
from support.hooks import ROOT

K8S = ROOT / "docker" / "k8s"
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
GENERATOR = ROOT / "scripts" / "k8s_configmap.py"
KUBERNETES_VERSION = "1.30.0"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
EXTRA_ENV = {"PROMETHEUS_MULTIPROC_DIR"}  # read by prometheus-client, not by Settings
MiB = 1024 * 1024


# -- helpers -----------------------------------------------------------------------------------------------


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@cache
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in MANIFESTS:
        for doc in documents(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{key} is defined twice"
            found[key] = doc
    return found


def one(kind: str) -> dict[str, Any]:
    matches = [doc for (k, _), doc in objects().items() if k == kind]
    assert len(matches) == 1, f"expected one {kind}, found {len(matches)}"
    return matches[0]


def pod_spec() -> dict[str, Any]:
    return one("Deployment")["spec"]["template"]["spec"]


def service_container() -> dict[str, Any]:
    (container,) = pod_spec()["containers"]
    return container


def all_containers() -> list[dict[str, Any]]:
    spec = pod_spec()
    return [*spec.get("initContainers", []), *spec["containers"]]


def container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port (a number or a port name) resolved to the container's port number."""
    if isinstance(port, int):
        assert port in {p["containerPort"] for p in container["ports"]}, f"no container port {port}"
        return port
    named = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    assert named, f"no container port named {port!r}"
    return named[0]


def get_routes() -> set[str]:
    return {route.path for route in ROUTES if isinstance(route, Route) and "GET" in (route.methods or ())}


def settings_variables() -> set[str]:
    prefix = Settings.model_config["env_prefix"]
    assert prefix == "CDS_"
    return {f"{prefix}{name.upper()}" for name in Settings.model_fields}


def parses_as_cli(command: list[str]) -> None:
    """The command is `cds-service ...` and our CLI accepts its arguments (argparse exits 2 otherwise)."""
    assert command[0] == "cds-service", command
    try:
        cli_parser().parse_args(command[1:])
    except SystemExit as exit_:
        pytest.fail(f"`{shlex.join(command)}` is not a valid cds-service command (exit {exit_.code})")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("CDS_"):
            monkeypatch.delenv(name)
    return monkeypatch


# -- Kubernetes: schema ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid_against_the_kubernetes_schema(path: Path):
    docs = documents(path)
    assert docs, f"{path.name} is empty"
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_rejects_a_misspelt_field():
    deployment = json.loads(json.dumps(one("Deployment")))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in MANIFESTS]
    assert kustomization["kind"] == "Kustomization"


# -- Kubernetes: the pieces fit together -------------------------------------------------------------------


def test_probes_ask_routes_that_answer(client: TestClient):
    container = service_container()
    probes = {kind: container[kind] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"  # includes the database and the rules
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"  # a database outage must not restart pods
    for kind, probe in probes.items():
        path = probe["httpGet"]["path"]
        assert path in get_routes(), f"{kind} asks {path}, which the app does not serve"
        assert container_port(container, probe["httpGet"]["port"]) == 8000
        assert client.get(path).status_code == 200, f"{kind}: GET {path}"
    startup = probes["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30  # rules compile before the port opens


def test_prometheus_scrapes_the_metrics_route(client: TestClient):
    annotations = one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == container_port(service_container(), "http")
    path = annotations["prometheus.io/path"]
    assert path in get_routes()
    response = client.get(path)
    assert response.status_code == 200
    assert "# TYPE" in response.text


def test_the_service_reaches_the_container_port_and_selects_the_pods():
    service = one("Service")
    deployment = one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert container_port(service_container(), port["targetPort"]) == 8000
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_the_container_port_is_the_one_the_image_exposes_and_serves():
    container = service_container()
    assert container_port(container, "http") == int(dockerfile_final_values("EXPOSE")[-1])
    command = container["command"]
    parses_as_cli(command)
    assert command[command.index("--port") + 1] == "8000"
    assert command[command.index("--host") + 1] == "0.0.0.0"


def test_the_autoscaler_targets_the_deployment_and_can_measure_cpu():
    hpa = one("HorizontalPodAutoscaler")
    deployment = one("Deployment")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        deployment["metadata"]["name"],
    )
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    # utilisation is relative to the request: every container of the pod needs a CPU request
    assert all("cpu" in c["resources"]["requests"] for c in pod_spec()["containers"])
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]


def test_the_disruption_budget_covers_the_pods_and_still_allows_a_drain():
    pdb = one("PodDisruptionBudget")
    deployment = one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["minAvailable"] == 1
    assert deployment["spec"]["replicas"] > pdb["spec"]["minAvailable"]
    assert one("HorizontalPodAutoscaler")["spec"]["minReplicas"] > pdb["spec"]["minAvailable"]


def test_replicas_are_spread_over_nodes():
    spec = pod_spec()
    pod_labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    constraints = spec.get("topologySpreadConstraints", [])
    anti_affinity = spec.get("affinity", {}).get("podAntiAffinity")
    assert constraints or anti_affinity
    for constraint in constraints:
        assert constraint["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert "kubernetes.io/hostname" in {c["topologyKey"] for c in constraints}


def test_containers_run_locked_down():
    spec = pod_spec()
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert str(pod["runAsUser"]) == dockerfile_user().split(":")[0] != "0"
    tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    for container in all_containers():
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"]["drop"] == ["ALL"], container["name"]
        assert "add" not in context["capabilities"]
        assert context.get("privileged") is not True
        # a read-only root needs a writable /tmp
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert mounts.get("/tmp") in tmp_volumes, f"{container['name']} has no writable /tmp"
    assert spec["automountServiceAccountToken"] is False


def test_every_container_has_requests_and_limits():
    for container in all_containers():
        resources = container["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources[kind].keys(), f"{container['name']}: {kind}"
        assert quantity(resources["limits"]["memory"]) >= quantity(resources["requests"]["memory"])
        assert quantity(resources["limits"]["cpu"]) >= quantity(resources["requests"]["cpu"])
    service = service_container()["resources"]
    # one worker idles at about 100 MiB: a request below that invites eviction, a limit below it OOM kills
    assert quantity(service["requests"]["memory"]) >= 128 * MiB
    assert quantity(service["limits"]["memory"]) >= 2 * quantity(service["requests"]["memory"])


def quantity(value: str | int | float) -> float:
    """A Kubernetes quantity (500m, 1, 192Mi, 1Gi) as a number of cores or bytes."""
    text = str(value)
    suffixes = {"m": 1e-3, "Ki": 1024, "Mi": MiB, "Gi": 1024 * MiB, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(suffixes.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def test_the_init_container_migrates_the_database_the_service_uses():
    spec = pod_spec()
    (init,) = spec["initContainers"]
    assert init["command"] == ["cds-service", "migrate"]
    parses_as_cli(init["command"])
    assert init["image"] == service_container()["image"]
    assert env_sources(init)["CDS_DATABASE_URL"] == env_sources(service_container())["CDS_DATABASE_URL"]


def env_sources(container: dict[str, Any]) -> dict[str, Any]:
    """Each variable a container gets, mapped to where it comes from (a value or a reference)."""
    found: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data = objects()[("ConfigMap", source["configMapRef"]["name"])]["data"]
        else:
            secret = objects()[("Secret", source["secretRef"]["name"])]
            data = secret.get("stringData") or secret.get("data")
        found.update({key: ("from", key) for key in data})
    for variable in container.get("env", []):
        found[variable["name"]] = variable.get("value", json.dumps(variable.get("valueFrom"), sort_keys=True))
    return found


def test_every_variable_is_a_setting_the_service_reads():
    known = settings_variables() | EXTRA_ENV
    for container in all_containers():
        unknown = set(env_sources(container)) - known
        assert not unknown, f"{container['name']}: not settings of the service: {sorted(unknown)}"


def test_the_settings_parse_as_the_service_would_read_them(clean_env: pytest.MonkeyPatch):
    secret = one("Secret")["stringData"]
    for name, value in settings_data().items():
        clean_env.setenv(name, value)
    for variable in service_container()["env"]:
        if "value" in variable:
            clean_env.setenv(variable["name"], variable["value"])
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            clean_env.setenv(variable["name"], secret[ref["key"]])
    settings = Settings()
    assert settings.auth == "jwt"
    assert settings.database_url.startswith("postgresql+asyncpg://")  # several replicas share one store
    assert settings.plandefinitions_dir == Path("/etc/cds/plandefinitions")
    assert settings.fhir_page_size == 200
    assert settings.log_format == "json"
    assert not settings.fhir_allow_http


def settings_data() -> dict[str, str]:
    return objects()[("ConfigMap", "cds-service-settings")]["data"]


def test_references_name_objects_and_keys_that_exist():
    spec = pod_spec()
    for container in all_containers():
        for source in container.get("envFrom", []):
            ref = source.get("configMapRef") or source.get("secretRef")
            kind = "ConfigMap" if "configMapRef" in source else "Secret"
            assert (kind, ref["name"]) in objects()
        for variable in container.get("env", []):
            ref = (variable.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in objects()[("Secret", ref["name"])]["stringData"]
    for volume in spec["volumes"]:
        if "configMap" in volume:
            assert ("ConfigMap", volume["configMap"]["name"]) in objects()
        if "secret" in volume:
            secret = objects()[("Secret", volume["secret"]["secretName"])]
            for item in volume["secret"].get("items", []):
                assert item["key"] in secret["stringData"]


def volume_mount(backing: str, name: str) -> str:
    """Where the service container mounts the volume backed by a ConfigMap or Secret of that name."""
    spec = pod_spec()
    field = {"configMap": "name", "secret": "secretName"}[backing]
    volumes = [v["name"] for v in spec["volumes"] if v.get(backing, {}).get(field) == name]
    assert len(volumes) == 1
    mounts = [m for m in service_container()["volumeMounts"] if m["name"] == volumes[0]]
    assert len(mounts) == 1 and mounts[0]["readOnly"] is True
    return mounts[0]["mountPath"]


def test_plan_definitions_come_from_the_generated_configmap():
    configmap = documents(K8S / "plandefinitions-configmap.yaml")[0]
    mount = volume_mount("configMap", configmap["metadata"]["name"])
    env = {v["name"]: v.get("value") for v in service_container()["env"]}
    assert env["CDS_PLANDEFINITIONS_DIR"] == mount == "/etc/cds/plandefinitions"


def test_the_trusted_clients_file_is_mounted_where_the_setting_points():
    secret = one("Secret")
    mount = volume_mount("secret", secret["metadata"]["name"])
    env = {v["name"]: v.get("value") for v in service_container()["env"]}
    (volume,) = [v for v in pod_spec()["volumes"] if "secret" in v]
    (item,) = volume["secret"]["items"]
    assert env["CDS_TRUSTED_CLIENTS"] == f"{mount}/{item['path']}"
    assert item["key"] == "trusted-clients.yaml"


def test_the_placeholder_secret_is_recognisable_and_well_formed(tmp_path: Path):
    data = one("Secret")["stringData"]
    assert "CHANGE-ME" in data["CDS_DATABASE_URL"]
    assert "PLACEHOLDER" in data["trusted-clients.yaml"]
    path = tmp_path / "trusted-clients.yaml"
    path.write_text(data["trusted-clients.yaml"])
    clients = load_trusted_clients(path)  # the service would start with it
    assert [c.iss for c in clients] == ["https://ehr.example-hospital.org"]


def test_the_data_folder_is_writable_on_the_read_only_root():
    """The card journal goes to the working folder's data/ (/app/data, the image's volume): each pod gets an
    emptyDir there, since the root filesystem is read-only."""
    (workdir,) = dockerfile_final_values("WORKDIR")
    assert dockerfile_final_values("VOLUME") == [f"{workdir}/data"]
    mounts = {m["mountPath"]: m for m in service_container()["volumeMounts"]}
    data = mounts[f"{workdir}/data"]
    assert not data.get("readOnly")
    (volume,) = [v for v in pod_spec()["volumes"] if v["name"] == data["name"]]
    assert "emptyDir" in volume


def ingress_serves(ingress: dict[str, Any], path: str) -> bool:
    """Whether a request path reaches a backend under the Ingress's paths (Prefix matches whole segments)."""
    for rule in ingress["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            prefix = entry["path"].rstrip("/")
            if entry["pathType"] == "Exact" and path == entry["path"]:
                return True
            if entry["pathType"] == "Prefix" and (path == prefix or path.startswith(f"{prefix}/")):
                return True
    return False


def test_the_ingress_serves_the_public_url_over_tls_and_keeps_operations_inside():
    ingress = one("Ingress")
    public = urlsplit(settings_data()["CDS_PUBLIC_BASE_URL"])
    assert public.scheme == "https" and public.path in ("", "/")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == public.hostname  # the audience every JWT is checked against
    (tls,) = ingress["spec"]["tls"]
    assert tls["hosts"] == [public.hostname] and tls["secretName"]
    service = one("Service")
    (service_port,) = service["spec"]["ports"]
    for entry in rule["http"]["paths"]:
        backend = entry["backend"]["service"]
        assert backend["name"] == service["metadata"]["name"]
        assert backend["port"] in ({"name": service_port["name"]}, {"number": service_port["port"]})
    for path in (
        "/cds-services",
        "/cds-services/postfusion-patient-view",
        "/cds-services/postfusion-order-sign/feedback",
        "/rules/data",
        "/fhir/metadata",
        "/fhir/QuestionnaireResponse/$extract",
        "/capture/",
        "/capture/config.json",
        "/openapi.json",
    ):
        assert ingress_serves(ingress, path), f"the Ingress does not publish {path}"
    for path in ("/metrics", "/healthz", "/readyz", "/"):
        assert not ingress_serves(ingress, path), f"the Ingress publishes {path}"
    body = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert quantity(body.replace("m", "Mi")) >= int(settings_data()["CDS_MAX_BODY_BYTES"])


def test_the_network_policy_lets_in_the_ingress_controller_and_out_dns_the_database_and_https():
    policy = one("NetworkPolicy")["spec"]
    pod_labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    (inbound,) = policy["ingress"]
    assert [container_port(service_container(), p["port"]) for p in inbound["ports"]] == [8000]
    for peer in inbound["from"]:  # a namespace and its controller pods, never "anyone"
        assert peer.keys() == {"namespaceSelector", "podSelector"}, peer
    allowed = set()
    for rule in policy["egress"]:
        assert rule.get("to") and rule.get("ports"), f"{rule} allows every destination or port"
        allowed |= {(p["protocol"], p["port"]) for p in rule["ports"]}
    secret = one("Secret")["stringData"]
    database_port = make_url(secret["CDS_DATABASE_URL"]).port or 5432
    assert allowed == {("UDP", 53), ("TCP", 53), ("TCP", database_port), ("TCP", 443)}
    clients = yaml.safe_load(secret["trusted-clients.yaml"])["clients"]
    urls = [url for client in clients for url in [*client["fhir_servers"], client.get("jwks_url")] if url]
    for url in urls:  # the service's outbound calls are HTTPS on 443
        parts = urlsplit(url)
        assert parts.scheme == "https" and (parts.port or 443) == 443, url


# -- the plan-definition ConfigMap -------------------------------------------------------------------------


def generator(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(GENERATOR), *args], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def test_the_committed_configmap_is_in_sync_with_plandefinitions():
    result = generator("--check")
    assert result.returncode == 0, result.stderr


def test_the_configmap_holds_every_rule_file_under_its_name_within_the_size_limit():
    configmap = documents(K8S / "plandefinitions-configmap.yaml")[0]
    files = {p.name: p for p in (ROOT / "plandefinitions").rglob("*.json")}
    assert sorted(configmap["data"]) == sorted(files)
    for name, path in files.items():
        assert configmap["data"][name] == path.read_text()
    size = sum(len(k.encode()) + len(v.encode()) for k, v in configmap["data"].items())
    assert size < 1 * MiB
    assert (K8S / "plandefinitions-configmap.yaml").stat().st_size < 1 * MiB


def test_check_fails_on_a_stale_configmap(tmp_path: Path):
    source = tmp_path / "plans"
    shutil.copytree(ROOT / "plandefinitions", source)
    output = tmp_path / "configmap.yaml"
    assert generator("--source", str(source), "--output", str(output), "--check").returncode == 1  # missing
    assert generator("--source", str(source), "--output", str(output)).returncode == 0
    assert generator("--source", str(source), "--output", str(output), "--check").returncode == 0
    plan = source / "30-revision.json"
    plan.write_text(plan.read_text().replace('"status": "active"', '"status": "draft"', 1))
    result = generator("--source", str(source), "--output", str(output), "--check")
    assert result.returncode == 1
    assert "stale" in result.stderr


def test_clashing_file_names_fail_loudly(tmp_path: Path):
    source = tmp_path / "plans"
    shutil.copytree(ROOT / "plandefinitions", source)
    shutil.copy(source / "valuesets" / "Crp.json", source / "libraries" / "Crp.json")
    output = tmp_path / "configmap.yaml"
    result = generator("--source", str(source), "--output", str(output))
    assert result.returncode == 2
    assert "Crp.json: libraries/Crp.json, valuesets/Crp.json" in result.stderr
    assert not output.exists()


def test_a_configmap_over_one_mebibyte_is_refused(tmp_path: Path):
    source = tmp_path / "plans"
    shutil.copytree(ROOT / "plandefinitions", source)
    padding = {"resourceType": "ValueSet", "status": "active", "description": "x" * MiB}
    (source / "valuesets" / "Huge.json").write_text(json.dumps(padding))
    result = generator("--source", str(source), "--output", str(tmp_path / "configmap.yaml"))
    assert result.returncode == 2
    assert "at most 1048576" in result.stderr


# -- the Dockerfile ----------------------------------------------------------------------------------------


@cache
def dockerfile_stages() -> list[list[dict[str, Any]]]:
    stages: list[list[dict[str, Any]]] = []
    for instruction in DockerfileParser(path=str(DOCKERFILE)).structure:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages and instruction["instruction"] != "COMMENT":
            stages[-1].append(instruction)
    return stages


def dockerfile_final_values(instruction: str) -> list[str]:
    return [i["value"] for i in dockerfile_stages()[-1] if i["instruction"] == instruction]


def dockerfile_user() -> str:
    return dockerfile_final_values("USER")[-1]


def test_the_image_is_built_in_stages():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    final = " ".join(i["value"] for i in stages[-1])
    # the final stage takes only the installed environment from the build, and builds nothing itself
    copies_from = [v for v in dockerfile_final_values("COPY") if v.startswith("--from=")]
    assert copies_from and all(v.split()[1:] == ["/opt/venv", "/opt/venv"] for v in copies_from)
    for tool in ("pip wheel", "pip install", "/wheels", "gcc", "build-essential", "apt-get install", "/src"):
        assert tool not in final, f"the runtime stage contains {tool!r}"
    assert "pip wheel" in " ".join(i["value"] for i in stages[0])


def test_the_image_runs_as_a_numeric_non_root_user():
    user = dockerfile_user()
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000  # numeric, so runAsNonRoot can verify it


def dockerfile_env() -> dict[str, str]:
    """The runtime stage's ENV (a variable's own value, as set in the Dockerfile)."""
    return DockerfileParser(path=str(DOCKERFILE)).envs


def test_the_image_builds_offline():
    """No `# syntax=` line (BuildKit would pull that frontend from a registry) and no RUN --mount (the
    classic builder, and BuildKit without that frontend, refuse it)."""
    text = DOCKERFILE.read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, flags=re.IGNORECASE | re.MULTILINE)
    for stage in dockerfile_stages():
        for instruction in stage:
            if instruction["instruction"] == "RUN":
                assert not instruction["value"].startswith("--"), instruction["value"]
    assert dockerfile_stages()[0][0]["value"] == "${PYTHON_IMAGE} AS build"  # CI passes a local base


def test_the_image_writes_only_to_its_data_volume_and_tmp():
    assert dockerfile_final_values("VOLUME") == ["/app/data"]  # writable under --read-only
    env = dockerfile_env()
    assert env["MPLCONFIGDIR"].startswith("/tmp/")  # matplotlib's cache: $HOME is the read-only /app
    assert make_url(env["CDS_DATABASE_URL"]).database == "/app/data/feedback.sqlite3"
    runs = " ".join(i["value"] for i in dockerfile_stages()[-1] if i["instruction"] == "RUN")
    assert "chown 10001:10001 /app/data" in runs and dockerfile_user() == "10001:10001"


def run_image_command(tmp_path: Path, command: list[str], env: dict[str, str]) -> list[str]:
    """Run the image's CMD here with a stand-in `cds-service` that prints the arguments it was given."""
    stand_in = tmp_path / "bin" / "cds-service"
    stand_in.parent.mkdir()
    stand_in.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"\n")
    stand_in.chmod(0o755)
    path = f"{stand_in.parent}:{os.environ['PATH']}"
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, env={**env, "PATH": path})
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_the_image_healthcheck_asks_the_port_the_service_listens_on(tmp_path: Path):
    (healthcheck,) = dockerfile_final_values("HEALTHCHECK")
    exec_form = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert exec_form[0] == "python"  # the image has no curl
    (cmd,) = dockerfile_final_values("CMD")
    port = free_port()
    env = {"CDS_PORT": str(port)}
    served = run_image_command(tmp_path, json.loads(cmd), env)
    parses_as_cli(["cds-service", *served])
    assert served[served.index("--port") + 1] == str(port)
    assert served[served.index("--host") + 1] == "0.0.0.0"
    probe = [sys.executable, *exec_form[1:]]
    assert subprocess.run(probe, capture_output=True, timeout=30, env=env).returncode != 0  # nothing listens
    other = free_port()  # something healthy on another port (8000, say) must not count
    healthz = Starlette(routes=[r for r in ROUTES if r.path == "/healthz"])
    with serving(healthz, other):
        assert subprocess.run(probe, capture_output=True, timeout=30, env=env).returncode != 0
    with serving(healthz, port):
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30, env=env)
    assert result.returncode == 0, result.stderr


def test_the_image_environment_and_command():
    env = dockerfile_env()
    assert env["PYTHONDONTWRITEBYTECODE"] == env["PYTHONUNBUFFERED"] == "1"
    assert env["CDS_PLANDEFINITIONS_DIR"] == "/app/plandefinitions"
    (workdir,) = dockerfile_final_values("WORKDIR")
    copies = {v.split()[0]: str(Path(workdir) / v.split()[1]) for v in dockerfile_final_values("COPY")}
    assert copies["plandefinitions"] == "/app/plandefinitions"
    assert copies["fixtures/patients"] == "/app/fixtures/patients"
    (cmd,) = dockerfile_final_values("CMD")
    shell, flag, script = json.loads(cmd)
    assert (shell, flag) == ("sh", "-c") and script.startswith("exec ")  # SIGTERM reaches the service
    assert env["CDS_PORT"] == dockerfile_final_values("EXPOSE")[-1] == "8000"


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics, near enough: the last matching pattern wins, a match on a folder covers it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        bare = pattern.removeprefix("**/")
        candidates = prefixes if bare == pattern else [*prefixes, *parts]
        if any(fnmatch.fnmatchcase(c, bare) for c in candidates):
            result = not negated
    return result


def test_the_build_context_keeps_what_the_image_copies_and_drops_the_rest():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for stage in dockerfile_stages():
        for instruction in stage:
            if instruction["instruction"] == "COPY" and not instruction["value"].startswith("--from"):
                sources += instruction["value"].split()[:-1]
    assert {"pyproject.toml", "README.md", "cds_service", "plandefinitions", "fixtures/patients"} <= set(
        sources
    )
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source, patterns), f"{source} is copied but .dockerignore excludes it"
    for path in (".venv", ".git", "tests/hapi/target", "data", "cds_service/__pycache__", "tests", "docs"):
        assert ignored(path, patterns), f"{path} would be sent to the build"


# -- docker compose ----------------------------------------------------------------------------------------


def compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return (
            subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def compose() -> Iterator[Any]:
    if not compose_available():
        reason = "`docker compose` is not available (install it with scripts/compose.sh)"
        if os.environ.get("CDS_REQUIRE_COMPOSE") == "1":
            pytest.fail(f"CDS_REQUIRE_COMPOSE=1 but {reason}")
        pytest.skip(reason)

    def config(**env: str) -> dict[str, Any]:
        environment = {k: v for k, v in os.environ.items() if k not in {"POSTGRES_PASSWORD"}}
        environment.update(env)
        result = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE_FILE), "config"],
            capture_output=True,
            text=True,
            timeout=60,
            env=environment,
        )
        assert result.returncode == 0, result.stderr
        return yaml.safe_load(result.stdout)

    yield config


def test_compose_file_uses_the_compose_specification():
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    assert "version" not in raw
    assert set(raw["services"]) == {"cds", "migrate", "postgres", "hapi", "load-fixtures"}


def test_compose_services_start_in_order(compose):
    services = compose()["services"]
    assert set(services) == {"cds", "migrate", "postgres", "hapi", "load-fixtures"}
    depends = services["cds"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "healthcheck" in services["cds"]


def test_compose_one_shot_jobs_run_the_service_image(compose):
    services = compose()["services"]
    image = services["cds"]["image"]
    build = services["cds"]["build"]
    assert Path(build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILE
    for job in ("migrate", "load-fixtures"):
        assert services[job]["image"] == image
        assert services[job]["restart"] == "no"
        parses_as_cli(services[job]["command"])
    assert services["migrate"]["command"] == ["cds-service", "migrate"]
    assert (
        services["migrate"]["environment"]["CDS_DATABASE_URL"]
        == (services["cds"]["environment"]["CDS_DATABASE_URL"])
    )


def test_compose_loads_the_fixtures_once_hapi_answers(compose):
    services = compose()["services"]
    command = services["load-fixtures"]["command"]
    assert command[:2] == ["cds-service", "load-fixtures"]
    assert float(command[command.index("--wait") + 1]) >= 120  # HAPI takes a minute or more to start
    fhir = command[command.index("--fhir") + 1]
    assert fhir == "http://hapi:8080/fhir"
    # the fixtures are where the image puts them (the package's default folder is not in the image)
    (workdir,) = dockerfile_final_values("WORKDIR")
    copied = {str(Path(workdir) / v.split()[1]) for v in dockerfile_final_values("COPY")}
    assert command[command.index("--cases") + 1] in copied
    assert services["load-fixtures"]["depends_on"]["hapi"]["condition"] == "service_started"
    assert services["cds"]["environment"]["CDS_FHIR_ALLOWED_SERVERS"] == fhir


def test_compose_images_are_pinned(compose):
    for name, service in compose()["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image}"
    assert compose()["services"]["postgres"]["image"].startswith("postgres:16")
    assert compose()["services"]["hapi"]["image"].startswith("hapiproject/hapi:v")


def test_compose_service_settings_are_read_by_the_service(compose, clean_env: pytest.MonkeyPatch):
    services = compose()["services"]
    for name in ("cds", "migrate"):
        unknown = set(services[name]["environment"]) - settings_variables() - EXTRA_ENV
        assert not unknown, f"{name}: {sorted(unknown)}"
    for variable, value in services["cds"]["environment"].items():
        clean_env.setenv(variable, value)
    settings = Settings()
    assert settings.fhir_allowed_servers == ["http://hapi:8080/fhir"]
    assert settings.fhir_allow_http and settings.fhir_page_size == 200 and settings.log_format == "json"


def test_compose_trusted_clients_come_from_a_secret_file(compose, tmp_path: Path):
    config = compose()
    cds = config["services"]["cds"]
    (secret,) = cds["secrets"]
    target = secret["target"] if secret["target"].startswith("/") else f"/run/secrets/{secret['target']}"
    assert cds["environment"]["CDS_TRUSTED_CLIENTS"] == target
    source = Path(config["secrets"][secret["source"]]["file"])
    assert source.resolve() == (ROOT / "docker" / "trusted-clients.compose.yaml").resolve()
    (client,) = load_trusted_clients(source)
    hapi = config["services"]["load-fixtures"]["command"][
        config["services"]["load-fixtures"]["command"].index("--fhir") + 1
    ]
    assert hapi in client.fhir_servers  # the service may fetch the synthetic patients it loaded


@pytest.mark.parametrize("password", ["s3cret-for-test", "p@ss:w/rd%41?#"], ids=["plain", "url-special"])
def test_compose_database_password_is_one_setting(compose, clean_env: pytest.MonkeyPatch, password: str):
    services = compose(POSTGRES_PASSWORD=password)["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == password
    assert services["postgres"]["environment"]["POSTGRES_USER"] == "cds"
    assert services["postgres"]["environment"]["POSTGRES_DB"] == "cds"
    for name in ("cds", "migrate"):  # `@`, `:` and `/` reach PostgreSQL as typed, percent signs too
        for variable in [v for v in os.environ if v.startswith("CDS_")]:
            clean_env.delenv(variable)
        for variable, value in services[name]["environment"].items():
            clean_env.setenv(variable, value)
        url = make_url(Settings().database_url)
        assert (url.drivername, url.username, url.password, url.host, url.port, url.database) == (
            "postgresql+asyncpg",
            "cds",
            password,
            "postgres",
            5432,
            "cds",
        ), name
    assert any(
        v["target"] == "/var/lib/postgresql/data" and v["type"] == "volume"
        for v in services["postgres"]["volumes"]
    )


def test_compose_publishes_only_on_this_host(compose):
    """The stack trusts the public sandbox key (anyone can sign for it): no port may face the network."""
    services = compose()["services"]
    published = {name: service.get("ports", []) for name, service in services.items()}
    assert published["cds"], "the service is published for the EHR on this host"
    for name, ports in published.items():
        for port in ports:
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond this host"


def test_compose_runs_the_service_as_the_image_is_tested(compose):
    """Read-only root, a tmpfs on /tmp and a named volume on /app/data, as scripts/image-test.sh runs it."""
    config = compose()
    cds = config["services"]["cds"]
    assert cds["read_only"] is True
    assert "/tmp" in cds["tmpfs"]
    (data,) = [v for v in cds["volumes"] if v["target"] == dockerfile_final_values("VOLUME")[0]]
    assert data["type"] == "volume" and data["source"] in config["volumes"]
