"""Patients are remembered only by a keyed hash (V2-30): HMAC-SHA256 with a deployment secret, so the database
alone (a copy, a backup, a report query) neither names a patient nor lets anyone test a guessed id.

The secret is `CDS_PATIENT_KEY_SECRET`. Without it (allowed on SQLite only, see `config`), a random secret is
generated once and kept in the database, so every worker of the host shares it and a restart keeps it; that
secret sits next to the keys it protects, which is why a deployment must configure its own.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime

from sqlalchemy import select

from .database import Database
from .schema import GeneratedSecretRow

log = logging.getLogger("cds_service.store")

SECRET_NAME = "patient-key"
SEPARATOR = "\x1f"  # cannot occur in an issuer, a FHIR id or a reference, so no two inputs share a message


class PatientKeys:
    """Keyed hashes of patients and of their draft orders; holds the secret and never shows it."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def __repr__(self) -> str:
        return "PatientKeys(<secret>)"

    @classmethod
    async def load(cls, database: Database, configured: str | None) -> PatientKeys:
        """The configured secret, else the one this database generated (made now if it has none)."""
        if configured is not None:
            return cls(configured.encode())
        log.warning(
            "CDS_PATIENT_KEY_SECRET is not set: patients are keyed with a random secret kept in the "
            "database; set it for any deployment (see the README)"
        )
        return cls(bytes.fromhex(await _generated_secret(database)))

    def patient(self, scope: str, patient_id: str) -> str:
        """The key of a patient of one EHR (`scope`: its issuer and tenant), since ids are unique per EHR."""
        return self._mac("patient", scope, patient_id)

    def draft(self, patient_key: str, reference: str) -> str:
        """The key of a draft order of that patient (draft ids often embed the patient's own id)."""
        return self._mac("draft", patient_key, reference)

    def _mac(self, *parts: str) -> str:
        return hmac.new(self._secret, SEPARATOR.join(parts).encode(), hashlib.sha256).hexdigest()


async def _generated_secret(database: Database) -> str:
    """Insert a new random secret unless one exists, then read whichever won: replicas racing agree."""
    candidate = {"name": SECRET_NAME, "value": secrets.token_hex(32), "created_at": datetime.now(UTC)}
    async with database.sessions.begin() as session:
        await session.execute(database.insert(GeneratedSecretRow).values(candidate).on_conflict_do_nothing())
    async with database.sessions() as session:
        query = select(GeneratedSecretRow.value).where(GeneratedSecretRow.name == SECRET_NAME)
        return (await session.execute(query)).scalar_one()
