"""Canonical URLs of this project's own FHIR artefacts (extensions, code systems)."""

BASE = "http://postfusion-cds.org/fhir"
FACT = f"{BASE}/StructureDefinition/fact"
CRITERION = f"{BASE}/StructureDefinition/criterion"
OVERRIDE_REASON = f"{BASE}/StructureDefinition/override-reason"
TEXT_MATCH = f"{BASE}/StructureDefinition/text-match"
OWN_EXTENSIONS = f"{BASE}/StructureDefinition/"
DEFAULT_VALUE = "http://hl7.org/fhir/StructureDefinition/cqf-defaultValue"
RULE_CODES = f"{BASE}/CodeSystem/rule-id"
LOCAL_CODES = f"{BASE}/CodeSystem/local"
LANGUAGE = "text/x-json-logic"

EXTENSIONS = frozenset({FACT, CRITERION, OVERRIDE_REASON, TEXT_MATCH})
CRITERION_PARTS = ("code", "label", "expression", "requiredWhen", "citation", "breakdown")
