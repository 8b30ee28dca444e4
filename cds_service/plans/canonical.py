"""Canonical URLs of this project's own FHIR artefacts (extensions, code systems)."""

BASE = "http://postfusion-cds.org/fhir"
FACT = f"{BASE}/StructureDefinition/fact"
CRITERION = f"{BASE}/StructureDefinition/criterion"
OVERRIDE_REASON = f"{BASE}/StructureDefinition/override-reason"
TEXT_MATCH = f"{BASE}/StructureDefinition/text-match"
PARAMETER_MIN = f"{BASE}/StructureDefinition/parameter-min"  # inclusive bounds of a numeric parameter
PARAMETER_MAX = f"{BASE}/StructureDefinition/parameter-max"
PARAMETER_ALLOWED = f"{BASE}/StructureDefinition/parameter-allowed"  # one allowed value of a string parameter
OWN_EXTENSIONS = f"{BASE}/StructureDefinition/"
DEFAULT_VALUE = "http://hl7.org/fhir/StructureDefinition/cqf-defaultValue"
RULE_CODES = f"{BASE}/CodeSystem/rule-id"
LOCAL_CODES = f"{BASE}/CodeSystem/local"
LANGUAGE = "text/x-json-logic"

EXTENSIONS = frozenset(
    {FACT, CRITERION, OVERRIDE_REASON, TEXT_MATCH, PARAMETER_MIN, PARAMETER_MAX, PARAMETER_ALLOWED}
)
CRITERION_PARTS = ("code", "label", "expression", "requiredWhen", "citation", "breakdown")
