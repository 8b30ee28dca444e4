"""TLS for tests of the outbound client: a throwaway CA with a certificate it signed for some host names, and
a resolver that answers test names with chosen loopback addresses (the real `socket.getaddrinfo`, patched
for those names only, so the service's own lookup and pinning run as in production)."""

from __future__ import annotations

import itertools
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Certificates:
    """PEM bytes: the CA, and the leaf it signed with the leaf's private key."""

    ca: bytes
    leaf: bytes
    key: bytes

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA and nothing else."""
        return ssl.create_default_context(cadata=self.ca.decode())

    def write(self, folder: Path) -> tuple[Path, Path]:
        """The leaf certificate and its key as files (what servers load): (certfile, keyfile)."""
        certfile, keyfile = folder / "cert.pem", folder / "key.pem"
        certfile.write_bytes(self.leaf)
        keyfile.write_bytes(self.key)
        return certfile, keyfile


def certificates(names: Sequence[str]) -> Certificates:
    """A test CA and a certificate it signed for `names` (subject alternative names), valid for an hour."""
    now = datetime.now(UTC)

    def build(subject: str, issuer: str, key: Any, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            alternative = x509.SubjectAlternativeName([x509.DNSName(name) for name in names])
            builder = builder.add_extension(alternative, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build("test CA", "test CA", ca_key, ca_key, ca=True)
    leaf = build(names[0], "test CA", leaf_key, ca_key, ca=False)
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = serialization.Encoding.PEM
    return Certificates(ca.public_bytes(pem), leaf.public_bytes(pem), key_pem)


def resolving(answers: dict[str, list[str]]) -> Callable[..., Any]:
    """A getaddrinfo that answers each name in `answers` with the next of its addresses on every lookup
    (a rebinding name has two, taking turns), and every other name as usual."""
    real = socket.getaddrinfo
    turns = {name: itertools.cycle(addresses) for name, addresses in answers.items()}

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host  # anyio passes the name IDNA-encoded
        if name in turns:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(turns[name]), int(port or 0)))]
        return real(host, port, *args, **kwargs)

    return resolve
