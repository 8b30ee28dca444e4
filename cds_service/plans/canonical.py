"""Canonical URLs of this project's own FHIR artefacts (extensions, code systems)."""

BASE = "http://postfusion-cds.org/fhir"
FACT = f"{BASE}/StructureDefinition/fact"
CRITERION = f"{BASE}/StructureDefinition/criterion"
OVERRIDE_REASON = f"{BASE}/StructureDefinition/override-reason"  # on a Library: the shared list (V2-29)
SOURCE_LABEL = f"{BASE}/StructureDefinition/source-label"  # a plan's card `source.label`: its guideline basis
REQUEST_CATEGORY = f"{BASE}/StructureDefinition/request-category"  # an ActivityDefinition's request category
TEXT_MATCH = f"{BASE}/StructureDefinition/text-match"
PARAMETER_MIN = f"{BASE}/StructureDefinition/parameter-min"  # inclusive bounds of a numeric parameter
PARAMETER_MAX = f"{BASE}/StructureDefinition/parameter-max"
PARAMETER_ALLOWED = f"{BASE}/StructureDefinition/parameter-allowed"  # one allowed value of a string parameter
STATUS_PROFILE = f"{BASE}/StructureDefinition/status-profile"  # on a DataRequirement: which records count
CRITERION_STATE = f"{BASE}/StructureDefinition/criterion-state"  # on a $apply action: one checklist line
DRAFT_ORDER = f"{BASE}/StructureDefinition/draft-order"  # on a $apply action: the draft order it is about
SITE_ADDITION = f"{BASE}/StructureDefinition/site-addition"  # on a ValueSet include: the site file adding it
OWN_EXTENSIONS = f"{BASE}/StructureDefinition/"
DEFAULT_VALUE = "http://hl7.org/fhir/StructureDefinition/cqf-defaultValue"
RULE_CODES = f"{BASE}/CodeSystem/rule-id"
LOCAL_CODES = f"{BASE}/CodeSystem/local"
LANGUAGE = "text/x-json-logic"

EXTENSIONS = frozenset(
    {
        FACT,
        CRITERION,
        OVERRIDE_REASON,
        SOURCE_LABEL,
        REQUEST_CATEGORY,
        TEXT_MATCH,
        PARAMETER_MIN,
        PARAMETER_MAX,
        PARAMETER_ALLOWED,
        STATUS_PROFILE,
        CRITERION_STATE,
        DRAFT_ORDER,
        SITE_ADDITION,
    }
)
# `missing` is what a summary says when the criterion is not met; `not-required` why it does not apply.
CRITERION_PARTS = (
    "code",
    "label",
    "missing",
    "expression",
    "requiredWhen",
    "not-required",
    "citation",
    "breakdown",
)
CRITERIA_EXTENSION = "postfusion-cds.criteria"  # the card extension key of the checklist (V2-27)
UNMET_STATUSES = frozenset({"not-met", "not-documented"})  # the statuses that make a criterion "unmet"
DRAFT_EXTENSION = "postfusion-cds.draft"  # the draft order ("Type/id") a per-draft card is about

# How pages name the code systems the rules use.
SYSTEM_NAMES = {
    LOCAL_CODES: "this service's own code",
    "http://snomed.info/sct": "SNOMED CT",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://hl7.org/fhir/sid/icd-10": "ICD-10",
    "http://www.ama-assn.org/go/cpt": "CPT",
    "http://www.cms.gov/Medicare/Coding/ICD10": "ICD-10-PCS",
    "http://loinc.org": "LOINC",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://unitsofmeasure.org": "UCUM",
}
