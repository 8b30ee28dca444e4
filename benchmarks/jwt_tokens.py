"""A CDS client for the authenticated benchmarks: an ES384 key, its JWKS on a real loopback HTTP server (the
service fetches it through the `jku` the client's entry allowlists), the trusted-clients file naming it, and
pre-signed tokens, one per request, written as one file per wrk thread."""

from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

ISS = "https://ehr.bench.example.org"
KID = "bench-es384"
LIFETIME_S = 900  # well inside the service's one-hour maximum; covers signing plus the longest run


@dataclass
class Jwks:
    """The JWKS document served at `url`, and how often the service fetched it (its cache at work)."""

    url: str
    document: dict[str, Any]
    fetches: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> None:
        with self._lock:
            self.fetches += 1


@dataclass
class Client:
    """The trusted client: its private key, the JWKS server publishing the public half, and the file that
    tells the service to trust it."""

    key: ec.EllipticCurvePrivateKey
    jwks: Jwks
    trusted_clients: Path

    def tokens(self, audience: str, count: int) -> list[str]:
        """`count` distinct tokens (unique `jti`) for `audience`, valid from now for LIFETIME_S."""
        now = int(time.time())
        headers = {"kid": KID, "typ": "JWT", "jku": self.jwks.url}
        return [
            jwt.encode(
                {"iss": ISS, "aud": audience, "iat": now, "exp": now + LIFETIME_S, "jti": str(uuid.uuid4())},
                self.key,
                algorithm="ES384",
                headers=headers,
            )
            for _ in range(count)
        ]


def _handler(jwks: Jwks) -> type[BaseHTTPRequestHandler]:
    body = json.dumps(jwks.document).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/jwks.json":
                self.send_error(404)
                return
            jwks.count()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def client() -> Iterator[Client]:
    """A fresh P-384 key, its JWKS served on 127.0.0.1 for as long as the context lasts, and the
    trusted-clients file: `jwks_url` and the allowlisted `jku` are both that server."""
    key = ec.generate_private_key(ec.SECP384R1())
    public = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    document = {"keys": [{**public, "kid": KID, "use": "sig", "alg": "ES384"}]}
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    jwks = Jwks(url, document)
    server.RequestHandlerClass = _handler(jwks)
    thread = threading.Thread(target=server.serve_forever, name="bench-jwks", daemon=True)
    thread.start()
    folder = Path(tempfile.mkdtemp(prefix="cds-bench-auth-"))
    trusted = folder / "trusted-clients.json"
    entry = {"iss": ISS, "jwks_url": url, "jku_allowlist": [url], "fhir_servers": []}
    trusted.write_text(json.dumps({"clients": [entry]}))
    try:
        yield Client(key, jwks, trusted)
    finally:
        server.shutdown()
        server.server_close()


def slices(tokens: list[str], threads: int) -> list[Path]:
    """One file per wrk thread, disjoint slices of `tokens`, one token a line."""
    folder = Path(tempfile.mkdtemp(prefix="cds-bench-tokens-"))
    paths = []
    for index in range(threads):
        path = folder / f"tokens-{index}.txt"
        path.write_text("\n".join(tokens[index::threads]) + "\n")
        paths.append(path)
    return paths
