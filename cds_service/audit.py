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

from .metrics import REQUEST_LATENCY, REQUESTS
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


def count_request(request: Request, record: AuditRecord, elapsed: float) -> None:
    """Metrics of the call, labelled only with values we define: unknown service ids
    are counted as 'unknown', so callers cannot create series."""
    service = request.app.state.rules.services.get(record.service)
    service_id = service.id if service is not None else ("-" if record.service == "-" else "unknown")
    hook = service.hook if service is not None else "-"
    REQUESTS.labels(record.action, service_id, hook, str(record.status)).inc()
    REQUEST_LATENCY.labels(record.action, service_id, hook).observe(elapsed)


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
        elapsed = time.perf_counter() - started
        count_request(request, record, elapsed)
        fields = {
            "action": record.action,
            "service": record.service,
            "hook": record.hook,
            "hookInstance": record.hook_instance,
            "iss": record.iss,
            "status": record.status,
            "ms": round(elapsed * 1000, 1),
            "resources": record.resources,
            "fetched_keys": record.fetched_keys,
            "cards": ",".join(record.rules) or "-",
            "failed_plans": ",".join(record.failed_plans) or "-",
            "stored": record.stored,
        }
        log.log(
            logging.WARNING if unverified else logging.INFO,
            " ".join(
                [record.action, *(f"{key}={value}" for key, value in fields.items() if key != "action")]
            ),
            extra=fields,  # the JSON log format makes each a field of its own
        )
