"""The trusted clients file: YAML or JSON, and a ValueError that names the file and the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jwt_support import EC_KEY, public_jwk

from cds_service.auth import TrustedClient, load_trusted_clients

JWKS = {"keys": [public_jwk(EC_KEY, "ec-1")]}
GOOD = {
    "clients": [
        {
            "iss": "https://ehr.example.org",
            "jwks_url": "https://ehr.example.org/.well-known/jwks.json",
            "jku_allowlist": ["https://ehr.example.org/.well-known/jwks.json"],
            "fhir_servers": ["https://fhir.example.org/r4"],
            "tenant": "t-1",
        },
        {"iss": "https://sandbox.cds-hooks.org", "jwks": JWKS},
        {"iss": "local", "jwks_url": "http://127.0.0.1:9000/jwks.json"},
    ]
}


def expected() -> list[TrustedClient]:
    return [
        TrustedClient(
            iss="https://ehr.example.org",
            jwks_url="https://ehr.example.org/.well-known/jwks.json",
            jwks=None,
            jku_allowlist=("https://ehr.example.org/.well-known/jwks.json",),
            fhir_servers=("https://fhir.example.org/r4",),
            tenant="t-1",
        ),
        TrustedClient(
            iss="https://sandbox.cds-hooks.org", jwks_url=None, jwks=JWKS, jku_allowlist=(), fhir_servers=()
        ),
        TrustedClient(
            iss="local",
            jwks_url="http://127.0.0.1:9000/jwks.json",
            jwks=None,
            jku_allowlist=(),
            fhir_servers=(),
        ),
    ]


def test_json(tmp_path: Path) -> None:
    path = tmp_path / "clients.json"
    path.write_text(json.dumps(GOOD))
    assert load_trusted_clients(path) == expected()


def test_yaml(tmp_path: Path) -> None:
    path = tmp_path / "clients.yaml"
    path.write_text(
        f"""
clients:
  - iss: https://ehr.example.org
    jwks_url: https://ehr.example.org/.well-known/jwks.json
    jku_allowlist: [https://ehr.example.org/.well-known/jwks.json]
    fhir_servers:
      - https://fhir.example.org/r4
    tenant: t-1
  - iss: https://sandbox.cds-hooks.org
    jwks: {json.dumps(JWKS)}
  - iss: local
    jwks_url: http://127.0.0.1:9000/jwks.json
"""
    )
    assert load_trusted_clients(path) == expected()


def entry(**fields: Any) -> dict[str, Any]:
    return {"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks.json", **fields}


BAD: list[tuple[str, Any, str]] = [
    ("not a mapping", ["x"], "'clients' list"),
    ("clients not a list", {"clients": {"iss": "x"}}, "'clients' list"),
    ("entry not a mapping", {"clients": ["x"]}, "clients[0]: expected a mapping"),
    (
        "missing iss",
        {"clients": [{"jwks_url": "https://a.example/jwks.json"}]},
        "clients[0]: 'iss' is required",
    ),
    ("both key sources", {"clients": [entry(jwks=JWKS)]}, "exactly one of 'jwks_url' and 'jwks'"),
    ("no key source", {"clients": [{"iss": "x"}]}, "exactly one of 'jwks_url' and 'jwks'"),
    ("duplicate iss", {"clients": [entry(), entry()]}, "clients[1]: duplicate iss"),
    (
        "jku_allowlist not a list",
        {"clients": [entry(jku_allowlist="https://a.example")]},
        "'jku_allowlist' must be",
    ),
    ("fhir_servers not a list", {"clients": [entry(fhir_servers={"a": 1})]}, "'fhir_servers' must be"),
    ("jwks without keys", {"clients": [{"iss": "x", "jwks": {"kty": "EC"}}]}, "non-empty 'keys' list"),
    ("jwks key without kid", {"clients": [{"iss": "x", "jwks": {"keys": [{"kty": "EC"}]}}]}, "keys[0]"),
    (
        "private key in jwks",
        {"clients": [{"iss": "x", "jwks": {"keys": [{**JWKS["keys"][0], "d": "x"}]}}]},
        "private key",
    ),
    (
        "symmetric key in jwks",
        {"clients": [{"iss": "x", "jwks": {"keys": [{"kty": "oct", "kid": "k"}]}}]},
        "symmetric",
    ),
    (
        "plain http jwks_url",
        {"clients": [entry(jwks_url="http://ehr.example.org/jwks.json")]},
        "'jwks_url' must be",
    ),
    (
        "plain http jku",
        {"clients": [entry(jku_allowlist=["http://ehr.example.org/jwks.json"])]},
        "'jku_allowlist'",
    ),
    ("tenant not a string", {"clients": [entry(tenant=5)]}, "'tenant' must be"),
    ("unknown field", {"clients": [entry(jwks_uri="https://x.example")]}, "unknown field(s) jwks_uri"),
]


@pytest.mark.parametrize(("data", "message"), [pytest.param(d, m, id=i) for i, d, m in BAD])
@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_malformed(tmp_path: Path, data: Any, message: str, suffix: str) -> None:
    path = tmp_path / f"clients{suffix}"
    path.write_text(json.dumps(data))  # JSON is valid YAML too
    with pytest.raises(ValueError) as caught:
        load_trusted_clients(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


@pytest.mark.parametrize(("name", "text"), [("clients.yaml", "clients: [\n"), ("clients.json", "{")])
def test_unparseable(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match="cannot read trusted clients"):
        load_trusted_clients(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nope\.yaml"):
        load_trusted_clients(tmp_path / "nope.yaml")
