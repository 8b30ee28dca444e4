"""The capture app as the service serves it: its files under a strict Content-Security-Policy, its launch
settings, and a clear answer when its libraries were never built. (The app at work, in a browser against
HAPI FHIR and a SMART authorization server: tests/integration/test_capture_loop.py.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cds_service.web import capture

APP_FILES = ["launch.html", "index.html", "launch.js", "app.js", "questionnaire.js", "save.js", "app.css"]


def directives(policy: str) -> dict[str, list[str]]:
    return {name: sources for name, *sources in (part.split() for part in policy.split(";"))}


@pytest.mark.parametrize("name", APP_FILES)
def test_every_file_of_the_app_is_served_under_the_policy(client: TestClient, name: str) -> None:
    response = client.get(f"/capture/{name}")
    assert response.status_code == 200
    policy = directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"], "no inline script, no eval, no other origin"
    assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'none'"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"  # launch ids and codes stay in the URL bar


def test_pages_are_not_cached_and_the_libraries_they_load_are_served(client: TestClient) -> None:
    page = client.get("/capture/index.html")
    assert page.headers["cache-control"] == "no-store"
    for script in (
        "vendor/lforms/main.js",
        "vendor/lforms/fhir/R4/lformsFHIR.min.js",
        "vendor/fhir-client.min.js",
    ):
        assert f'src="{script}"' in page.text
        assert client.get(f"/capture/{script}").status_code == 200


def test_the_app_may_call_this_service_the_allowed_fhir_servers_and_the_named_origins_only(
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(
        fhir_allowed_servers=["https://ehr.example.org/fhir/r4", "http://127.0.0.1:8080/fhir"],
        capture_connect_sources=["https://auth.example.org"],
        capture_frame_ancestors=["https://ehr.example.org"],
    )
    policy = directives(client.get("/capture/launch.html").headers["content-security-policy"])
    assert policy["connect-src"] == [
        "'self'",
        "http://127.0.0.1:8080",
        "https://auth.example.org",
        "https://ehr.example.org",
    ]
    assert policy["frame-ancestors"] == ["https://ehr.example.org"]


def test_by_default_only_this_service_may_frame_the_app(client: TestClient) -> None:
    policy = directives(client.get("/capture/index.html").headers["content-security-policy"])
    assert policy["frame-ancestors"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]


def test_the_launch_settings_name_the_client_and_exactly_the_scopes_the_app_needs(
    client_factory: Callable[..., TestClient],
) -> None:
    config = client_factory(capture_client_id="ehr-registered-id").get("/capture/config.json")
    assert config.status_code == 200 and config.headers["cache-control"] == "no-store"
    body = config.json()
    assert body["clientId"] == "ehr-registered-id"
    data = "patient/*.rs patient/Observation.c patient/QuestionnaireResponse.c patient/Procedure.c"
    assert body["scopes"] == {
        "ehr": f"launch openid fhirUser {data}",
        "standalone": f"launch/patient openid fhirUser {data}",
    }
    assert body["questionnaire"] == "http://postfusion-cds.org/fhir/Questionnaire/post-fusion-screen|2.0.0"


def test_an_app_whose_libraries_were_never_built_says_how_to_build_them(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(capture, "BUILT", tmp_path / "not-built")
    page = client.get("/capture/launch.html")
    assert page.status_code == 503
    assert "scripts/capture.sh" in page.text
    assert "content-security-policy" in page.headers


def test_files_outside_the_app_are_not_served(client: TestClient) -> None:
    assert client.get("/capture/../capture.py").status_code == 404
    assert client.get("/capture/nothing.js").status_code == 404
