"""The trusted CDS Clients (issuers) and the file they are configured in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .key_urls import is_key_url

FIELDS = frozenset({"iss", "jwks_url", "jwks", "jku_allowlist", "fhir_servers", "tenant"})


@dataclass(frozen=True)
class TrustedClient:
    """One CDS Client we accept JWTs from, with exactly one source of keys (`jwks_url` or inline `jwks`)."""

    iss: str
    jwks_url: str | None
    jwks: dict[str, Any] | None
    jku_allowlist: tuple[str, ...]  # jku header values honoured (exact match); empty: jku never honoured
    fhir_servers: tuple[str, ...]  # FHIR base URLs this client may send as fhirServer
    tenant: str | None = None  # if set, the token's `tenant` claim must equal it


def load_trusted_clients(path: Path) -> list[TrustedClient]:
    """Read `{"clients": [...]}` from a YAML or JSON file; any problem is a ValueError naming file and field.

    Failing loudly at start-up beats a client that silently cannot authenticate (or one trusted too widely).
    """
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read trusted clients: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("clients"), list):
        raise ValueError(f"{path}: expected a mapping with a 'clients' list")
    clients: list[TrustedClient] = []
    seen: set[str] = set()
    for index, entry in enumerate(data["clients"]):
        client = _parse_client(entry, f"{path}: clients[{index}]")
        if client.iss in seen:
            raise ValueError(f"{path}: clients[{index}]: duplicate iss {client.iss!r}")
        seen.add(client.iss)
        clients.append(client)
    return clients


def _parse_client(entry: Any, where: str) -> TrustedClient:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping")
    unknown = sorted(set(entry) - FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}")
    iss = entry.get("iss")
    if not isinstance(iss, str) or not iss:
        raise ValueError(f"{where}: 'iss' is required (a non-empty string)")
    where = f"{where} (iss {iss!r})"
    jwks_url, jwks = entry.get("jwks_url"), entry.get("jwks")
    if (jwks_url is None) == (jwks is None):
        raise ValueError(f"{where}: give exactly one of 'jwks_url' and 'jwks'")
    if jwks_url is not None and not (isinstance(jwks_url, str) and is_key_url(jwks_url)):
        raise ValueError(f"{where}: 'jwks_url' must be an https URL (http only on loopback)")
    if jwks is not None:
        _check_jwks(jwks, f"{where}: 'jwks'")
    jku_allowlist = _string_list(entry, "jku_allowlist", where)
    for url in jku_allowlist:
        if not is_key_url(url):
            raise ValueError(f"{where}: 'jku_allowlist' entry {url!r} must be https (http only on loopback)")
    tenant = entry.get("tenant")
    if tenant is not None and (not isinstance(tenant, str) or not tenant):
        raise ValueError(f"{where}: 'tenant' must be a non-empty string")
    return TrustedClient(
        iss=iss,
        jwks_url=jwks_url,
        jwks=jwks,
        jku_allowlist=jku_allowlist,
        fhir_servers=_string_list(entry, "fhir_servers", where),
        tenant=tenant,
    )


def _string_list(entry: dict[str, Any], field: str, where: str) -> tuple[str, ...]:
    value = entry.get(field, [])
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValueError(f"{where}: '{field}' must be a list of non-empty strings")
    return tuple(value)


def _check_jwks(jwks: Any, where: str) -> None:
    """A public signing JWKS: catches pasting a private key pair or a shared secret into the config."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ValueError(f"{where}: must be a JWKS mapping with a non-empty 'keys' list")
    for index, key in enumerate(jwks["keys"]):
        if not isinstance(key, dict) or not isinstance(key.get("kid"), str) or not key.get("kty"):
            raise ValueError(f"{where}: keys[{index}] must be a mapping with 'kty' and a string 'kid'")
        if key["kty"] == "oct":
            raise ValueError(f"{where}: keys[{index}] is a symmetric key; only public keys are allowed")
        if "d" in key:
            raise ValueError(f"{where}: keys[{index}] holds private key material ('d'); public keys only")
