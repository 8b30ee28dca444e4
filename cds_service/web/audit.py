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

from ..ops.metrics import REQUEST_LATENCY, REQUESTS
from ..protocol.request import UUID
from .errors import status_of
from .state import caller, state

log = logging.getLogger("cds_service.audit")


@dataclass(slots=True)
class AuditLine:
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


def count_request(request: Request, line: AuditLine, elapsed: float) -> None:
    """Metrics of the call, labelled only with values we define: unknown service ids
    are counted as 'unknown', so callers cannot create series."""
    service = state(request).rules.services.get(line.service)
    service_id = service.id if service is not None else ("-" if line.service == "-" else "unknown")
    hook = service.hook if service is not None else "-"
    REQUESTS.labels(line.action, service_id, hook, str(line.status)).inc()
    REQUEST_LATENCY.labels(line.action, service_id, hook).observe(elapsed)


@contextmanager
def audited(request: Request, action: str) -> Iterator[AuditLine]:
    """Log the line when the block ends, however it ends (an error gives the status it is answered with)."""
    line = AuditLine(action=action, service=str(request.path_params.get("service_id", "-"))[:128])
    request.state.client = None  # set by `authenticate` once the caller is verified
    started = time.perf_counter()
    try:
        yield line
    except Exception as error:
        line.status = status_of(error)
        raise
    finally:
        client = caller(request)
        unverified = state(request).verifier is None  # CDS_AUTH=off: say so loudly on every call
        line.iss = client.iss if client is not None else ("UNVERIFIED" if unverified else "-")
        elapsed = time.perf_counter() - started
        count_request(request, line, elapsed)
        fields = {
            "action": line.action,
            "service": line.service,
            "hook": line.hook,
            "hookInstance": line.hook_instance,
            "iss": line.iss,
            "status": line.status,
            "ms": round(elapsed * 1000, 1),
            "resources": line.resources,
            "fetched_keys": line.fetched_keys,
            "cards": ",".join(line.rules) or "-",
            "failed_plans": ",".join(line.failed_plans) or "-",
            "stored": line.stored,
        }
        log.log(
            logging.WARNING if unverified else logging.INFO,
            " ".join([line.action, *(f"{key}={value}" for key, value in fields.items() if key != "action")]),
            extra=fields,  # the JSON log format makes each a field of its own
        )
