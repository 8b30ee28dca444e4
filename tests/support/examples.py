"""The example requests in fixtures/hooks/: one synthetic case per hook, with complete prefetch.

Run `python -m support.examples` from tests/ after changing the rules' data requirements or the cases; a
test fails while the examples are stale.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson

from cds_service.hooks import build_services
from cds_service.plans.loader import load_ruleset

from support.hooks import HOOKS_DIR, ROOT
from support.requests import hook_request

EXAMPLES = {
    "patient-view": ("p10-smoker-depressed-chronic-pain", "chart-open"),
    "order-select": ("p25-hw-met-select-vs-sign", "select-removal"),
    "order-sign": ("p03-cc-incomplete-radicular", "sign-revision"),
}
FHIR_SERVER = "https://ehr.example.org/fhir"


def example_call(hook: str) -> dict[str, Any]:
    """The synthetic case's call that fixtures/hooks/{hook}.json is made from, with its expected cards."""
    case_id, call_name = EXAMPLES[hook]
    case = orjson.loads((ROOT / "fixtures" / "patients" / f"{case_id}.json").read_bytes())
    return next(call for call in case["calls"] if call["name"] == call_name)


def examples() -> dict[str, dict[str, Any]]:
    """hook -> the example request, deterministic so the files only change when their inputs do."""
    services = build_services(load_ruleset(ROOT / "plandefinitions"))
    templates = {service.hook: service.prefetch for service in services.values()}
    requests = {}
    for hook, (case_id, call_name) in EXAMPLES.items():
        case = orjson.loads((ROOT / "fixtures" / "patients" / f"{case_id}.json").read_bytes())
        call = next(call for call in case["calls"] if call["name"] == call_name)
        instance = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{case_id}/{call_name}"))
        request = hook_request(case, call, templates[hook], hook_instance=instance)
        requests[hook] = {"hookInstance": instance, "hook": hook, "fhirServer": FHIR_SERVER, **request}
    return requests


def write(directory: Path = HOOKS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for hook, request in examples().items():
        path = directory / f"{hook}.json"
        path.write_bytes(orjson.dumps(request, option=orjson.OPT_INDENT_2) + b"\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        print(f"wrote {path.relative_to(ROOT)}")
