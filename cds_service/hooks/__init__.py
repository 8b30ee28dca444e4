"""One hook call, HTTP-free: intake and validation, patient data (prefetch and fallback), the record,
evaluation and the response; and the CDS services the loaded rules offer."""

from .call import HookResult, PreparedCall, call_service, prepare_call
from .intake import ParsedRequest, drafts_in_scope, parse_request
from .registry import RuleRegistry
from .services import Service, build_services

__all__ = [
    "HookResult",
    "ParsedRequest",
    "PreparedCall",
    "RuleRegistry",
    "Service",
    "build_services",
    "call_service",
    "drafts_in_scope",
    "parse_request",
    "prepare_call",
]
