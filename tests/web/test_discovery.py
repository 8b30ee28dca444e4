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
    record = {
        "allergyIntolerances",
        "conditions",
        "medicationRequests",
        "medicationStatements",
        "observations",
    }
    record |= {"procedures", "serviceRequests", "diagnosticReports", "encounters"}
    # since revision 2 patient-view reads reports (a hardware problem found early, V2-6) and every hook
    # reads encounters (an ongoing hospice stay excludes elective cards, V2-11)
    assert set(services["patient-view"]["prefetch"]) == record
    order = services["order-sign"]["prefetch"]
    assert set(order) == record
    assert services["order-select"]["prefetch"] == order
    # observations are narrowed to exactly the codes the rules look at
    observations = order["observations"].split("&code=")[1].split(",")
    assert "http://loinc.org|97909-6" in observations  # ODI (R3)
    assert "http://postfusion-cds.org/fhir/CodeSystem/local|hardware-block-relief" in observations
    assert "http://loinc.org|8310-5" in observations  # body temperature (RF-3)
    assert not any(code.startswith("http://snomed.info/sct") for code in observations)
