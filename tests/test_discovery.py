"""Discovery: one service per hook, with prefetch templates that ask for exactly what the rules read."""

from cds_service.fhir import check

from support.hooks import SERVICES


def test_discovery_lists_one_service_per_hook(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    services = response.json()["services"]
    assert {s["hook"]: s["id"] for s in services} == SERVICES
    for service in services:
        assert set(service) <= {"id", "hook", "title", "description", "usageRequirements", "prefetch"}
        assert service["title"] and service["description"] and service["usageRequirements"]


def test_prefetch_templates_stay_in_the_query_subset(client):
    for service in client.get("/cds-services").json()["services"]:
        fields = {"userId", "patientId", "encounterId"}
        for key, template in service["prefetch"].items():
            assert check(template, fields) == [], (service["id"], key)


def test_prefetch_asks_for_exactly_the_data_the_rules_read(client):
    services = {s["hook"]: s for s in client.get("/cds-services").json()["services"]}
    # patient-view rules read conditions (red flags) and medications, never observations or reports
    assert set(services["patient-view"]["prefetch"]) == {
        "conditions",
        "medicationRequests",
        "medicationStatements",
    }
    order = services["order-sign"]["prefetch"]
    assert set(order) == {
        "conditions",
        "diagnosticReports",
        "medicationRequests",
        "medicationStatements",
        "observations",
    }
    # observations are narrowed to the codes the hardware rules look at
    assert order["observations"] == (
        "Observation?patient={{context.patientId}}&code="
        "http://postfusion-cds.org/fhir/CodeSystem/local|hardware-block-relief,"
        "http://postfusion-cds.org/fhir/CodeSystem/local|peri-screw-lucency"
    )
    assert services["order-select"]["prefetch"] == order
