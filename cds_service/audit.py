"""One audit line per call: who called which service, how it ended, how long it took, which cards it gave.

Only identifiers that are not patient data go in: the client's `iss`, the service id and hook, the
hookInstance (a random UUID of the client's), the HTTP status, the latency, counts and rule ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.requests import Request

from .protocol.outcome import ClientError
from .protocol.request import UUID

log = logging.getLogger("cds_service.audit")


@dataclass(slots=True)
class AuditRecord:
    action: str
    service: str
    iss: str = "-"
    hook: str = "-"
    hook_instance: str = "-"
    status: int = 500
    rules: list[str] = field(default_factory=list)
    resources: int = 0
    fetched_keys: int = 0
    failed_plans: list[str] = field(default_factory=list)
    stored: int = 0

    def request_body(self, body: object) -> None:
        """Take the hook and hookInstance from a request body, only if they have the expected shape."""
        if not isinstance(body, dict):
            return
        if isinstance(body.get("hook"), str) and len(body["hook"]) <= 64:
            self.hook = body["hook"]
        if isinstance(body.get("hookInstance"), str) and UUID.match(body["hookInstance"]):
            self.hook_instance = body["hookInstance"]


@contextmanager
def audited(request: Request, action: str) -> Iterator[AuditRecord]:
    """Log the record when the block ends, however it ends (a ClientError gives its own status)."""
    record = AuditRecord(action=action, service=str(request.path_params.get("service_id", "-"))[:128])
    started = time.perf_counter()
    try:
        yield record
    except ClientError as error:
        record.status = error.status
        raise
    finally:
        client = getattr(request.state, "client", None)  # set once the caller is authenticated
        unverified = request.app.state.verifier is None  # CDS_AUTH=off: say so loudly on every call
        record.iss = client.iss if client is not None else ("UNVERIFIED" if unverified else "-")
        log.log(
            logging.WARNING if unverified else logging.INFO,
            "%s service=%s hook=%s hookInstance=%s iss=%s status=%d ms=%.1f resources=%d fetched_keys=%d "
            "cards=%s failed_plans=%s stored=%d",
            record.action,
            record.service,
            record.hook,
            record.hook_instance,
            record.iss,
            record.status,
            (time.perf_counter() - started) * 1000,
            record.resources,
            record.fetched_keys,
            ",".join(record.rules) or "-",
            ",".join(record.failed_plans) or "-",
            record.stored,
        )
