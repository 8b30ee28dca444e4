"""Every example hook request is a valid CDS Hooks request carrying valid FHIR R4 resources."""

from pathlib import Path

import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class

from cds_service.hooks import parse_request
from cds_service.record import resources_of

from support.examples import write
from support.hooks import HOOKS_DIR, ROOT

REQUESTS = sorted(HOOKS_DIR.glob("*.json"))


def test_there_is_an_example_for_every_hook():
    assert {path.stem for path in REQUESTS} >= {"patient-view", "order-select", "order-sign"}


@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: p.name)
def test_example_request_is_valid(path: Path):
    body = orjson.loads(path.read_bytes())
    request = parse_request(body, body["hook"])
    resources = [*request.draft_orders]
    for value in (body.get("prefetch") or {}).values():
        if value is not None:
            get_fhir_model_class(value["resourceType"]).model_validate(value)
            resources.extend(resources_of(value))
    assert resources
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        reference = (resource.get("subject") or {}).get("reference")
        assert reference == f"Patient/{body['context']['patientId']}", resource["id"]


@pytest.mark.parametrize("path", sorted((ROOT / "plandefinitions").rglob("*.json")), ids=lambda p: p.name)
def test_plan_definition_files_are_valid_fhir(path: Path):
    resource = orjson.loads(path.read_bytes())
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_example_requests_are_up_to_date(tmp_path: Path):
    """The examples carry complete prefetch for the current rules (`python -m support.examples`)."""
    written = {path.name: path.read_bytes() for path in write(tmp_path)}
    assert written == {path.name: path.read_bytes() for path in REQUESTS}
