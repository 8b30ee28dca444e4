"""The CQL baseline: the hardware-removal decision written in CQL (`benchmarks/cql/HardwareRemoval.cql`),
translated to ELM by the reference translator from Maven Central and run by cql-execution over cql-exec-fhir
(npm) in one long-lived Node process (`benchmarks/cql/harness.js`, JSON lines on stdin/stdout).

Checked equivalent in the run: the same hardware card(s) as our service for every fixture call with a hardware
draft, every grown benchmark patient, and every fixture patient probed with a hardware-removal order-select.
Timed in the same run: our in-process `call_service` on the order-select request against the engine's
`executor.exec` alone (library, code service and patient source built once, timed inside Node), at every size.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from inprocess import NOW, Harness, iterations, summary_ms
from patients import Patient

from cds_service.hooks import call_service

from support.requests import hook_request

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CQL = BENCH / "cql"
BUILD = CQL / "build"
PLAN = ROOT / "plandefinitions" / "40-hardware-removal.json"
VALUESETS = ROOT / "plandefinitions" / "valuesets"
CASES = ROOT / "fixtures" / "patients"
TRANSLATOR = "info.cqframework:cql-to-elm:3.29.0 (+ quick, model-jackson, elm-jackson)"
# The Library parameters the CQL reads; their values in force are passed to the engine.
PARAMS = (
    "evidence.lookbackDays",
    "redFlag.lookbackDays",
    "redFlag.postOpRetentionDays",
    "redFlag.feverC",
    "block.hardwarePct",
    "hardware.lucencyMm",
    "hardwareRemoval.allowBlockWithoutFailure",
    "hardwareRemoval.requireConservativeCare",
)
PROBE_DRAFT = {
    "resourceType": "ServiceRequest",
    "id": "cql-probe-removal",
    "status": "draft",
    "intent": "order",
    "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "22852"}]},
}
HOOK_INSTANCE = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
DRAFT_CODES = {"ServiceRequest": "code", "MedicationRequest": "medicationCodeableConcept"}

# How faithful the CQL is, point by point: (aspect, "same" | "differs" | "not written", how).
FIDELITY: list[tuple[str, str, str]] = [
    (
        "value sets",
        "same",
        "the rule set's own ValueSet resources, served by the harness's code service: listed codes, "
        "ICD-10 is-a as a code prefix (descendent-of without the code itself), excludes "
        "(plans/terminology.py)",
    ),
    (
        "LumbarSpineSite text-match",
        "same",
        "its terms ('lumbar', 'lumbosacral') written in the CQL over bodySite text and displays: text "
        "matching is not a CQL terminology operation",
    ),
    (
        "thresholds",
        "same",
        "block > block.hardwarePct, lucency > hardware.lucencyMm, fever > redFlag.feverC: CQL parameters set "
        "from the rule set's values in force",
    ),
    (
        "look-back windows",
        "same",
        "evidence 365 d, red flags 14 d, post-operative retention 0-7 d, on the calendar day as written "
        "(partial dates take their first day), open towards the future",
    ),
    (
        "status hygiene",
        "same",
        "Condition usable/active/confirmed from the first coded clinical and verification status (refuted "
        "and entered-in-error never count), Procedure completed, Observation final/amended/corrected, "
        "DiagnosticReport final/amended/corrected/appended, Encounter in-progress/onleave",
    ),
    (
        "latest value wins",
        "same",
        "maximum effective instant, then issued, across offsets; on a full tie the first in the record. "
        "Written with Max and =: a query's `sort by` in cql-execution compares DateTimes as text (wrong "
        "across offsets, and it never reaches the second key), which an edge variant here caught",
    ),
    (
        "dates read",
        "same",
        "the first of record/entry.py's DATE_FIELDS present per type (onset, onsetPeriod, recordedDate; "
        "performed; effective, effectivePeriod, effectiveInstant, issued)",
    ),
    (
        "units",
        "same",
        "quantity code (else unit) converted as plans/units.py for %, mm and Cel ([degF] converted); a "
        "quantity without a unit is unknown",
    ),
    (
        "unknown data",
        "same",
        "CQL's three-valued logic: a missing value makes a comparison null, a null criterion never shows a "
        "card (our is_true); screens answer true for true, 1 or a text reading 1 (JSON-Logic's ==)",
    ),
    (
        "non-numeric values",
        "differs",
        "a block or lucency given as a numeric string or code is unknown in the CQL; our engine coerces it "
        "(JSON-Logic ToNumber) and a non-numeric one fails the plan: none of the patients has such a value",
    ),
    (
        "draft orders",
        "differs",
        "CDS Hooks context: the harness passes the drafts in scope (order-select: the selected ones) as a "
        "`List<Concept>` parameter; the CQL counts those in HardwareRemovalOrders, one card each",
    ),
    (
        "record set-up",
        "differs",
        "the bundle is the request's prefetch, de-duplicated by type/id and with entered-in-error records "
        "left in (the CQL's status tests drop them as our record does)",
    ),
    (
        "conservative care (HCC)",
        "not written",
        "the conservative-care checklist C1-C7 is null in the CQL; read only when "
        "hardwareRemoval.requireConservativeCare is true (default false): with it true the CQL shows no "
        "HW-MET",
    ),
    (
        "card content",
        "not written",
        "summaries, details, checklists, suggestions (thin-cut CT on breakage, remove-draft) and HW-EARLY "
        "(patient-view): the comparison is the rule id of each card the plan shows",
    ),
]


# Edge variants of p25 (HW-MET: confirmed T84.216A, hardware block 85 % on 2026-10-02), one change each, so
# the check also covers the hygiene, window, unit and latest-value rules on the hardware evidence itself.
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
LOCAL = "http://postfusion-cds.org/fhir/CodeSystem/local"
UCUM = "http://unitsofmeasure.org"
Change = Callable[[list[dict[str, Any]]], None]


def _coding(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _status(kind: str, code: str) -> dict[str, Any]:
    return _coding(f"http://terminology.hl7.org/CodeSystem/{kind}", code)


def _observation(ident: str, code: dict[str, Any], when: str, **value: Any) -> dict[str, Any]:
    observation = {"resourceType": "Observation", "id": ident, "status": "final", "code": code}
    return {**observation, "effectiveDateTime": when, **value}


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _set(kind: str, **changes: Any) -> Change:
    """Change the base case's T84 condition ("condition") or its hardware block ("block")."""

    def change(resources: list[dict[str, Any]]) -> None:
        suffix = "-condition-2" if kind == "condition" else "-observation-3"
        target = next(r for r in resources if r.get("id", "").endswith(suffix))
        target.update(changes)
        for key in [k for k, v in changes.items() if v is None]:
            del target[key]

    return change


def _adding(*added: dict[str, Any], then: Change | None = None) -> Change:
    def change(resources: list[dict[str, Any]]) -> None:
        resources.extend(added)
        if then is not None:
            then(resources)

    return change


BLOCK = _coding(LOCAL, "hardware-block-relief")
VARIANTS: list[tuple[str, Change]] = [
    ("T84 provisional", _set("condition", verificationStatus=_status("condition-ver-status", "provisional"))),
    ("T84 refuted", _set("condition", verificationStatus=_status("condition-ver-status", "refuted"))),
    ("T84 resolved", _set("condition", clinicalStatus=_status("condition-clinical", "resolved"))),
    ("block preliminary", _set("block", status="preliminary")),
    ("block entered in error", _set("block", status="entered-in-error")),
    ("block 400 days old", _set("block", effectiveDateTime="2025-09-27")),
    ("block dated by month only", _set("block", effectiveDateTime="2026-10")),
    ("block without a unit", _set("block", valueQuantity={"value": 85})),
    ("block as valueInteger", _set("block", valueQuantity=None, valueInteger=85)),
    (
        "newer block of 60 %",
        _adding(_observation("v-block", BLOCK, "2026-10-20", valueQuantity=_quantity(60, "%"))),
    ),
    (
        "same-day block of 60 % issued later",
        _adding(
            _observation(
                "v-block",
                BLOCK,
                "2026-10-02",
                issued="2026-10-02T16:00:00Z",
                valueQuantity=_quantity(60, "%"),
            ),
            then=_set("block", issued="2026-10-02T10:00:00Z"),
        ),
    ),
    (
        "block of 60 % later in UTC, earlier as written",
        _adding(
            _observation("v-block", BLOCK, "2026-10-19T23:30:00Z", valueQuantity=_quantity(60, "%")),
            then=_set("block", effectiveDateTime="2026-10-20T01:00:00+02:00"),
        ),
    ),
    (
        "final report concluding non-union",
        _adding(
            {
                "resourceType": "DiagnosticReport",
                "id": "v-report",
                "status": "final",
                "code": _coding("http://www.ama-assn.org/go/cpt", "72131"),
                "effectiveDateTime": "2026-10-05",
                "conclusionCode": [_coding(ICD, "M96.0")],
            }
        ),
    ),
    (
        "active implant infection",
        _adding(
            {
                "resourceType": "Condition",
                "id": "v-infection",
                "code": _coding(ICD, "T84.7XXA"),
                "clinicalStatus": _status("condition-clinical", "active"),
                "onsetDateTime": "2026-10-10",
            }
        ),
    ),
    (
        "peri-screw lucency 1.5 mm instead of T84",
        _adding(
            _observation(
                "v-lucency",
                _coding(LOCAL, "peri-screw-lucency"),
                "2026-09-20",
                valueQuantity=_quantity(1.5, "mm"),
            ),
            then=_set("condition", code=_coding(ICD, "M54.50")),
        ),
    ),
    (
        "fever 102.2 [degF] with wound drainage",
        _adding(
            _observation(
                "v-fever",
                _coding("http://loinc.org", "8310-5"),
                "2026-10-30T09:00:00Z",
                valueQuantity=_quantity(102.2, "[degF]"),
            ),
            _observation(
                "v-drainage", _coding(LOCAL, "rf-wound-drainage"), "2026-10-30T09:00:00Z", valueBoolean=True
            ),
        ),
    ),
]


def _variant(change: Change) -> dict[str, Any]:
    case = orjson.loads((CASES / "p25-hw-met-select-vs-sign.json").read_bytes())
    resources = [entry["resource"] for entry in case["bundle"]["entry"]]
    change(resources)
    subject = {"reference": f"Patient/{case['id']}"}
    for resource in resources:
        if resource["resourceType"] != "Patient":
            resource.setdefault("subject", subject)
    case["bundle"]["entry"] = [{"resource": resource} for resource in resources]
    return case


class CqlUnavailable(RuntimeError):
    """Translation or the Node engine could not be set up: says the command and its error."""


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])[-1500:]


def _digest() -> str:
    parts = [CQL / "HardwareRemoval.cql", CQL / "pom.xml", CQL / "src/main/java/cqlbaseline/Translate.java"]
    return hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest()[:16]


def build_elm() -> dict[str, Any]:
    """ELM JSON for the CQL library and FHIRHelpers, cached under build/ by the sources' content hash."""
    target = BUILD / f"elm-{_digest()}"
    record = target / "translation.json"
    if record.exists():
        return {**json.loads(record.read_text()), "cached": True, "dir": str(target)}
    if shutil.which("mvn") is None:
        raise CqlUnavailable("mvn is not on PATH: the CQL cannot be translated")
    base = [
        "mvn",
        "-B",
        "-q",
        "-Dstyle.color=never",
        "-f",
        str(CQL / "pom.xml"),
        "compile",
        "exec:java",
        f"-Dcql.output={target}",
    ]
    for stale in BUILD.glob("elm-*"):  # ELM of earlier versions of the sources
        shutil.rmtree(stale)
    started = time.perf_counter()
    out = subprocess.run([*base[:4], "-o", *base[4:]], capture_output=True, text=True, timeout=900)
    if out.returncode != 0:  # the first run on a machine resolves the translator from Maven Central
        out = subprocess.run(base, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - started
    lines = [line[line.find("{") :] for line in out.stdout.splitlines() if '{"translate_ms"' in line]
    if out.returncode != 0 or not lines:
        raise CqlUnavailable(f"`{' '.join(base)}` exit {out.returncode}: {_tail(out.stderr + out.stdout)}")
    made = {**json.loads(lines[-1]), "wall_s": wall, "translator": TRANSLATOR, "command": " ".join(base)}
    record.write_text(json.dumps(made, indent=2) + "\n")
    return {**made, "cached": False, "dir": str(target)}


def ensure_node_modules() -> dict[str, Any]:
    """`npm ci` from the lock file when node_modules is missing."""
    if (CQL / "node_modules" / "cql-exec-fhir").exists():
        return {"ran": False}
    if shutil.which("npm") is None:
        raise CqlUnavailable("npm is not on PATH: the CQL engine cannot be installed")
    started = time.perf_counter()
    out = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=CQL, capture_output=True, text=True, timeout=600
    )
    if out.returncode != 0:
        raise CqlUnavailable(f"`npm ci` in benchmarks/cql exit {out.returncode}: {_tail(out.stderr)}")
    return {"ran": True, "seconds": time.perf_counter() - started}


def _version(package: str) -> str:
    manifest = CQL / "node_modules" / package / "package.json"
    return str(json.loads(manifest.read_text())["version"])


class Engine:
    """The Node harness as a child process: one request line, one answer line."""

    def __init__(self, elm_dir: str) -> None:
        if shutil.which("node") is None:
            raise CqlUnavailable("node is not on PATH: the CQL engine cannot run")
        started = time.perf_counter()
        # stderr to a file, not a pipe, so a chatty engine never blocks; closed by close()
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            ["node", str(CQL / "harness.js"), elm_dir, str(VALUESETS)],
            cwd=CQL,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            env={**os.environ, "TZ": "UTC"},
        )
        self.ready = self._read()
        self.ready["start_to_ready_ms"] = (time.perf_counter() - started) * 1000

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=10)
            self.errors.seek(0)
            raise CqlUnavailable(f"the CQL harness exited: {_tail(self.errors.read().decode())}")
        answer: dict[str, Any] = orjson.loads(line)
        return answer

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(orjson.dumps(request) + b"\n")
        self.process.stdin.flush()
        answer = self._read()
        if not answer.get("ok"):
            raise RuntimeError(f"CQL harness, {request['op']} {request.get('id')}: {answer.get('error')}")
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write(b'{"op": "quit"}\n')
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.errors.close()


# ---------------------------------------------------------------- the same patients on both sides


def plan_rule_ids() -> frozenset[str]:
    """The rule ids the hardware plan's cards carry (each action's code)."""
    plan = orjson.loads(PLAN.read_bytes())
    return frozenset(action["code"][0]["coding"][0]["code"] for action in plan["action"])


def _removal_codes() -> set[tuple[str, str]]:
    valueset = orjson.loads((VALUESETS / "HardwareRemovalOrders.json").read_bytes())
    return {(i["system"], c["code"]) for i in valueset["compose"]["include"] for c in i.get("concept", [])}


def _codings(resource: dict[str, Any]) -> list[dict[str, Any]]:
    concept = resource.get(DRAFT_CODES.get(resource.get("resourceType", ""), "code")) or {}
    return [c for c in concept.get("coding") or () if isinstance(c, dict) and isinstance(c.get("code"), str)]


def drafts_in_scope(body: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The codings of each draft the hook looks at: order-select the selected ones, order-sign all."""
    context = body["context"]
    drafts = [e["resource"] for e in (context.get("draftOrders") or {}).get("entry", [])]
    if "selections" in context:
        chosen = set(context["selections"])
        drafts = [d for d in drafts if f"{d['resourceType']}/{d.get('id')}" in chosen]
    return [[{"system": c.get("system"), "code": c["code"]} for c in _codings(d)] for d in drafts]


def bundle_of(body: dict[str, Any], patient: dict[str, Any] | None) -> dict[str, Any]:
    """The patient's data as the engine reads it: the request's prefetch as one Bundle, with the Patient."""
    seen: set[tuple[str, Any]] = set()
    resources = [patient or {"resourceType": "Patient", "id": body["context"]["patientId"]}]
    for value in (body.get("prefetch") or {}).values():
        if not isinstance(value, dict):
            continue
        found = (
            [e.get("resource") for e in value.get("entry", [])]
            if value["resourceType"] == "Bundle"
            else [value]
        )
        for resource in found:
            key = (resource["resourceType"], resource.get("id"))
            if resource["resourceType"] != "Patient" and key not in seen:
                seen.add(key)
                resources.append(resource)
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def _patient_of(case: dict[str, Any]) -> dict[str, Any] | None:
    return next(
        (e["resource"] for e in case["bundle"]["entry"] if e["resource"]["resourceType"] == "Patient"), None
    )


def _probe_call(case: dict[str, Any]) -> dict[str, Any]:
    draft = {**PROBE_DRAFT, "subject": {"reference": f"Patient/{case['id']}"}}
    entry = [{"fullUrl": "urn:uuid:cql-probe-removal", "resource": draft}]
    return {
        "name": "cql-probe-select-removal",
        "hook": "order-select",
        "context": {
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": entry},
            "selections": ["ServiceRequest/cql-probe-removal"],
        },
        "expected": [],
    }


def checked_calls(grown: dict[int, Patient]) -> Iterator[tuple[str, str, Patient, str, datetime]]:
    """(group, label, patient, call name, T0): every fixture call with a hardware draft in its context, every
    fixture patient with a hardware-removal order-select probe, the edge variants of p25, and every grown
    patient's order-select."""
    codes = _removal_codes()
    for path in sorted(CASES.glob("*.json")):
        case = orjson.loads(path.read_bytes())
        t0 = datetime.fromisoformat(case["t0"].replace("Z", "+00:00"))
        for call in case["calls"]:
            drafts = [e["resource"] for e in (call["context"].get("draftOrders") or {}).get("entry", [])]
            if any((c.get("system"), c["code"]) in codes for d in drafts for c in _codings(d)):
                yield "fixture", case["id"], Patient(0, case), call["name"], t0
        probed = {**case, "calls": [*case["calls"], _probe_call(case)]}
        yield "probe", case["id"], Patient(0, probed), "cql-probe-select-removal", t0
    for name, change in VARIANTS:
        yield "variant", name, Patient(0, _variant(change)), "select-removal", NOW
    for patient in grown.values():
        yield "grown", f"{patient.id} grown to {patient.size}", patient, "select-removal", NOW


# ---------------------------------------------------------------- the section


def _body(harness: Harness, patient: Patient, call_name: str) -> dict[str, Any]:
    """The call's CDS Hooks request with complete prefetch, as benchmarks/patients.py builds it."""
    templates = dict(harness.services[patient.call(call_name)["hook"]].prefetch)
    return hook_request(patient.case, patient.call(call_name), templates, hook_instance=HOOK_INSTANCE)


def _ours(harness: Harness, body: dict[str, Any], t0: datetime, rules: frozenset[str]) -> list[str]:
    service = harness.services[body["hook"]]
    result = asyncio.run(call_service(service, harness.ruleset, body, None, t0))
    return sorted(
        c["source"]["topic"]["code"]
        for c in result.response["cards"]
        if c["source"]["topic"]["code"] in rules
    )


def cql_iterations(size: int, quick: bool) -> int:
    base = {20: 300, 100: 150, 1000: 30}.get(size, 100)  # about 80 s in all at full length
    return max(base // 4, 10) if quick else base


def _compare(
    harness: Harness, engine: Engine, grown: dict[int, Patient], params: dict[str, Any]
) -> dict[str, Any]:
    rules = plan_rule_ids()
    rows, build_ms, cold_ms, ids = [], {}, {}, {}
    for index, (group, label, patient, call_name, t0) in enumerate(checked_calls(grown)):
        body = _body(harness, patient, call_name)
        ident = f"{group}:{patient.id}:{call_name}:{patient.size}:{index}"
        loaded = engine.ask(
            {
                "op": "load",
                "id": ident,
                "bundle": bundle_of(body, _patient_of(patient.case)),
                "drafts": drafts_in_scope(body),
                "t0": t0.isoformat().replace("+00:00", "Z"),
                "params": params,
            }
        )
        answer = engine.ask({"op": "eval", "id": ident})
        ours = _ours(harness, body, t0, rules)
        theirs = sorted(answer["cards"])
        row = {"group": group, "case": label, "call": call_name, "size": patient.size, "ours": ours}
        row |= {"cql": theirs, "same": ours == theirs}
        if not row["same"]:
            row["cql_facts"] = answer["facts"]
        rows.append(row)
        if group == "grown":
            build_ms[patient.size], cold_ms[patient.size] = loaded["build_ms"], answer["exec_ms"]
            ids[patient.size] = ident
    return {"rows": rows, "build_ms": build_ms, "cold_ms": cold_ms, "ids": ids}


def _time(
    harness: Harness, engine: Engine, grown: dict[int, Patient], ids: dict[int, str], quick: bool
) -> list:
    timings = []
    for size, patient in grown.items():
        body = _body(harness, patient, "select-removal")
        ours = summary_ms(asyncio.run(harness.time_calls(body, iterations(size, quick))))
        ns = engine.ask({"op": "time", "id": ids[size], "n": cql_iterations(size, quick), "warmup": 5})["ns"]
        theirs = summary_ms([n / 1e9 for n in ns])
        timings.append(
            {
                "size": size,
                "ours": ours,
                "cql": theirs,
                "x_median": theirs["median_ms"] / ours["median_ms"],
                "x_p99": theirs["p99_ms"] / ours["p99_ms"],
            }
        )
    return timings


def run(grown: dict[int, Patient], quick: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {"ran": False, "fidelity": FIDELITY, "translator": TRANSLATOR}
    try:
        translation = build_elm()
        npm = ensure_node_modules()
        engine = Engine(translation["dir"])
    except (CqlUnavailable, subprocess.TimeoutExpired) as error:
        return {**result, "error": str(error)}
    try:
        harness = Harness()
        params = {name: harness.ruleset.params[name] for name in PARAMS}
        compared = _compare(harness, engine, grown, params)
        timings = _time(harness, engine, grown, compared["ids"], quick)
    finally:
        engine.close()
    rows = compared["rows"]
    differing = [r for r in rows if not r["same"]]
    for r in differing:
        print(
            f"[cql] DECISIONS DIFFER {r['group']} {r['case']} {r['call']}: ours {r['ours']}, CQL {r['cql']}",
            file=sys.stderr,
        )
    groups = {g: sum(1 for r in rows if r["group"] == g) for g in ("fixture", "probe", "variant", "grown")}
    return {
        **result,
        "ran": True,
        "engine": {
            "cql-execution": _version("cql-execution"),
            "cql-exec-fhir": _version("cql-exec-fhir"),
            "node": engine.ready["node"],
        },
        "one_off": {
            "translation": {k: translation.get(k) for k in ("cached", "translate_ms", "wall_s", "command")},
            "npm_ci": npm,
            "node_start_to_ready_ms": engine.ready["start_to_ready_ms"],
            "library_load_ms": engine.ready["library_load_ms"],
            "code_service_ms": engine.ready["code_service_ms"],
            "patient_source_build_ms": compared["build_ms"],
            "first_exec_ms": compared["cold_ms"],
        },
        "checked": groups,
        "equivalent": not differing,
        "differences": [
            f"{r['group']} {r['case']} {r['call']} (size {r['size']}): ours {r['ours']}, CQL {r['cql']}; "
            f"CQL facts {r['cql_facts']}"
            for r in differing
        ],
        "equivalence": rows,
        "timings": timings,
    }


if __name__ == "__main__":
    from patients import patients as build

    outcome = run(build(), "--quick" in sys.argv)
    print(json.dumps({k: v for k, v in outcome.items() if k not in ("equivalence", "fidelity")}, indent=2))
    sys.exit(0 if outcome.get("equivalent") else 1)
