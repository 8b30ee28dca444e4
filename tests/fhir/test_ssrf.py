"""The service never becomes a proxy: outbound calls go only to allowlisted https FHIR servers, never to
link-local or metadata addresses, never along redirects; each refusal happens before any connection, which a
loopback listener that counts connections proves."""

import socket
from collections.abc import Iterator

import pytest

from cds_service.fhir import forbidden_address

from support.fhir_server import ConnectionTrap
from support.hooks import SERVICES, hook_request

URL = f"/cds-services/{SERVICES['order-sign']}"


@pytest.fixture
def trap() -> Iterator[ConnectionTrap]:
    listener = ConnectionTrap()
    yield listener
    listener.close()


def without_prefetch(fhir_server: str) -> dict:
    body = hook_request("order-sign")
    body["fhirServer"] = fhir_server
    del body["prefetch"]["conditions"]
    return body


def refused(response, reason: str) -> None:
    assert response.status_code == 412, response.text
    assert reason in response.json()["issue"][0]["diagnostics"]


def test_a_server_not_on_the_allowlist_is_never_contacted(client_factory, trap):
    client = client_factory(fhir_allowed_servers=["https://ehr.example.org/fhir"])
    refused(client.post(URL, json=without_prefetch(f"http://127.0.0.1:{trap.port}/fhir")), "not allowlisted")
    assert trap.connections == 0


def test_userinfo_cannot_smuggle_another_host(client_factory, trap):
    client = client_factory(fhir_allowed_servers=["http://127.0.0.1/fhir"])
    refused(
        client.post(URL, json=without_prefetch(f"http://127.0.0.1@127.0.0.1:{trap.port}/fhir")),
        "not allowlisted",
    )
    assert trap.connections == 0


def test_plain_http_is_refused_unless_relaxed(client_factory, trap):
    base = f"http://127.0.0.1:{trap.port}/fhir"
    client = client_factory(fhir_allowed_servers=[base], fhir_allow_http=False)
    refused(client.post(URL, json=without_prefetch(base)), "must use https")
    assert trap.connections == 0


def test_redirects_are_not_followed(fhir, client_factory, trap):
    base, state = fhir
    state.redirect_to = f"http://127.0.0.1:{trap.port}/fhir/Condition"
    client = client_factory(fhir_allowed_servers=[base])
    refused(client.post(URL, json=without_prefetch(base)), "redirects are not followed")
    searches = [r for r in state.requests if r.path != "/fhir/metadata"]  # its FHIR version is read too
    assert len(searches) == 1 and trap.connections == 0


def test_a_host_resolving_to_the_metadata_address_is_refused(client_factory, trap, monkeypatch):
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host == "fhir.metadata.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 0))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    client = client_factory(fhir_allowed_servers=["http://fhir.metadata.test/fhir"])
    refused(client.post(URL, json=without_prefetch("http://fhir.metadata.test/fhir")), "address not allowed")


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("169.254.169.254", True),  # cloud instance metadata
        ("169.254.1.1", True),  # link-local
        ("fe80::1", True),
        ("::ffff:169.254.169.254", True),  # IPv4-mapped
        ("fd00:ec2::254", True),  # AWS metadata over IPv6
        ("100.100.100.200", True),  # Alibaba metadata
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("127.0.0.1", False),  # allowed only if allowlisted
        ("10.0.0.5", False),  # hospital networks are private: the allowlist decides
        ("203.0.113.7", False),
    ],
)
def test_address_classification(address, forbidden):
    assert forbidden_address(address) is forbidden


@pytest.mark.parametrize(
    "scheme_url", ["file:///etc/passwd", "gopher://127.0.0.1/", "ftp://ehr.example.org/fhir"]
)
def test_non_http_schemes_are_rejected_with_the_envelope(client, scheme_url):
    response = client.post(URL, json={**hook_request("order-sign"), "fhirServer": scheme_url})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["fhirServer"]
