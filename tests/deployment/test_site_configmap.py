"""The site folder (CDS_SITE_DIR) on Kubernetes: `scripts/k8s_configmap.py --site` renders it into the site
ConfigMap, the Deployment mounts that where CDS_SITE_DIR points, and the mounted volume (as the kubelet
writes it) loads the site's additions. The committed ConfigMap is an empty site folder rendered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from cds_service.plans.loader import load_ruleset

from support.hooks import ROOT

K8S = ROOT / "docker" / "k8s"
GENERATOR = ROOT / "scripts" / "k8s_configmap.py"
SITE_CONFIGMAP = K8S / "site-configmap.yaml"
ORDERABLE = {"system": "http://ehr.example.org/orderables", "concept": [{"code": "SPINE-REV-01"}]}
ADDITION = {
    "resourceType": "ValueSet",
    "url": "http://postfusion-cds.org/fhir/ValueSet/RevisionOrders",
    "status": "active",
    "compose": {"include": [ORDERABLE]},
}

PARAMETERS = {"resourceType": "Parameters", "parameter": [{"name": "phq9.threshold", "valueInteger": 20}]}


def generator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), *args], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def pod_spec() -> dict[str, Any]:
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def kubelet_volume(target: Path, data: dict[str, str]) -> Path:
    """A ConfigMap's data laid out as the kubelet writes it: a hidden timestamped folder, `..data`, links."""
    payload = target / "..2026_12_02_00_00_00.000000000"
    payload.mkdir(parents=True)
    for name, text in data.items():
        (payload / name).write_text(text)
    os.symlink(payload.name, target / "..data")
    for name in data:
        os.symlink(Path("..data") / name, target / name)
    return target


def test_the_committed_site_configmap_is_an_empty_site_folder(tmp_path: Path):
    result = generator("--site", str(tmp_path), "--output", str(SITE_CONFIGMAP), "--check")
    assert result.returncode == 0, result.stderr
    configmap = yaml.safe_load(SITE_CONFIGMAP.read_text())
    assert configmap["metadata"]["name"] == "cds-service-site" and configmap["data"] == {}


def test_the_site_configmap_is_mounted_where_cds_site_dir_points():
    spec = pod_spec()
    (volume,) = [v for v in spec["volumes"] if v.get("configMap", {}).get("name") == "cds-service-site"]
    assert volume["configMap"]["optional"] is True  # pods start without a site ConfigMap
    (container,) = spec["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    env = {v["name"]: v.get("value") for v in container["env"]}
    assert env["CDS_SITE_DIR"] == mount["mountPath"] == "/etc/cds/site" and mount["readOnly"] is True


def test_a_site_folder_rendered_and_mounted_loads_its_additions(tmp_path: Path):
    site = tmp_path / "site"
    (site / "valuesets").mkdir(parents=True)
    (site / "valuesets" / "orderables.json").write_text(json.dumps(ADDITION))
    (site / "parameters.json").write_text(json.dumps(PARAMETERS))
    output = tmp_path / "site-configmap.yaml"
    result = generator("--site", str(site), "--output", str(output))
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(output.read_text())["data"]
    assert sorted(data) == ["orderables.json", "parameters.json"]  # flattened, like the plan definitions
    ruleset = load_ruleset(ROOT / "plandefinitions", site_dir=kubelet_volume(tmp_path / "mounted", data))
    assert ruleset.valuesets["RevisionOrders"].contains(ORDERABLE["system"], "SPINE-REV-01")
    assert ruleset.params["phq9.threshold"] == 20
