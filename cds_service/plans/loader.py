"""Load the plan-definition folder: parse, validate as FHIR R4, cross-check, and compile.

Every problem is collected (not just the first) with its file and JSON path, so `cds-service validate`
shows a rule author the whole list at once. Nothing here runs per request.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from ..fhir import check as check_template
from ..logic import Engine, LogicError
from ..protocol.request import HOOKS
from ..protocol.response import SUMMARY_MAX
from ..types import Evaluator
from . import canonical
from .capture import with_capture
from .cards import UNMET_SEPARATOR, UNMET_SHOWN, fill_parameters
from .data_requirements import with_data_requirements
from .describe import RecordNames
from .engine import clinical_engine
from .errors import Problem, RuleSetError
from .local_codes import local_concepts
from .metadata import metadata_problems
from .model import CardSpec, Criterion, Fact, Indicator, Plan, RuleSet, SuggestionSpec
from .overlay import SiteFolder
from .parameters import ParameterBounds
from .prefetch_templates import derive_prefetch
from .questionnaires import questionnaire_problems
from .resource_types import unsearchable
from .rulewalk import walk
from .terminology import ValueSet, compile_valueset
from .typecheck import RuleTypes, summary_width
from .vocabulary import Vocabulary

CONTEXT_FIELDS = ("userId", "patientId", "encounterId")
PLACEHOLDER = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
SPECIAL_PLACEHOLDERS = frozenset({"unmet", "checklist", "draft"})
ORDER_HOOKS = frozenset({"order-select", "order-sign"})
INDICATORS: dict[str, Indicator] = {
    "routine": "info",
    "urgent": "warning",
    "asap": "warning",
    "stat": "critical",
}
PARAMETER_TYPES: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "integer": ("valueInteger", int),
    "decimal": ("valueDecimal", (int, float)),
    "boolean": ("valueBoolean", bool),
    "string": ("valueString", str),
}


def _fhir_model(resource_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(resource_type)


class Loader:
    """One load of a folder; collects problems and builds the RuleSet."""

    def __init__(
        self, directory: Path, parameters_file: Path | None = None, site_dir: Path | None = None
    ) -> None:
        self.directory = directory
        self.parameters_file = parameters_file
        self.site_dir = site_dir
        self.problems: list[Problem] = []
        self.files: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self.bounds = ParameterBounds()
        self.param_names: set[str] = set()
        self.types = RuleTypes({}, {}, {})
        self.unmet_width: int | None = 0

    def problem(self, file: str, path: str, message: str) -> None:
        """Record a problem at a path of the file as written (`action[2].condition[0]`; "" is the file)."""
        self.problems.append(Problem(file, path, message))

    # -- reading -----------------------------------------------------------------------------------------

    def read(self) -> None:
        if not self.directory.is_dir():
            self.problem(str(self.directory), "", "plan-definition folder not found")
            return
        for path in sorted(self.directory.rglob("*.json")):
            relative = path.relative_to(self.directory)
            # Hidden paths are not rules: editor and VCS files, and the `..data` / `..<timestamp>` copies of
            # every file in a Kubernetes ConfigMap volume (which would otherwise load each file twice).
            if any(part.startswith(".") for part in relative.parts):
                continue
            name = str(relative)
            try:
                resource = orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError as error:
                self.problem(name, "", f"invalid JSON: {error}")
                continue
            if not isinstance(resource, dict):
                self.problem(name, "", "a file must hold one FHIR resource (a JSON object)")
                continue
            kind = resource.get("resourceType")
            if kind not in {"PlanDefinition", "Library", "ValueSet", "CodeSystem", "Questionnaire"}:
                message = "expected PlanDefinition, Library, ValueSet, CodeSystem or Questionnaire"
                self.problem(name, "resourceType", message)
                continue
            self.problems.extend(
                Problem(name, where, message) for where, message in metadata_problems(resource)
            )
            if self.validate_fhir(name, kind, resource) and self.unique_id(name, kind, resource):
                self.files.setdefault(kind, []).append((name, resource))
                for where, message in _own_extension_problems(resource):
                    self.problem(name, where, message)

    def unique_id(self, name: str, kind: str, resource: dict[str, Any]) -> bool:
        """An artifact is read by type and id (`/fhir/ValueSet/crp`), so an id names one file."""
        taken = {str(other.get("id")): file for file, other in self.files.get(kind, [])}
        if not isinstance(resource.get("id"), str):
            self.problem(name, "id", f"a {kind} needs an id; the FHIR facade and the package read it by id")
            return False
        if resource["id"] in taken:
            self.problem(name, "id", f"{kind} id '{resource['id']}' is used by {taken[resource['id']]} too")
            return False
        return True

    def validate_fhir(self, name: str, kind: str, resource: dict[str, Any]) -> bool:
        try:
            _fhir_model(kind).model_validate(resource)
        except ValidationError as error:
            for item in error.errors(include_url=False, include_input=False):
                parts = [p for p in item["loc"] if p not in {"root", "__root__"}]  # pydantic wrapper names
                location = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
                self.problem(name, location, f"not valid FHIR R4: {item['msg']}")
            return False
        if resource.get("status") not in {"draft", "active", "retired", "unknown"}:
            self.problem(name, "status", "status must be draft, active, retired or unknown")
            return False
        return True

    # -- value sets and libraries ------------------------------------------------------------------------

    def valuesets(self) -> dict[str, ValueSet]:
        found: dict[str, ValueSet] = {}
        local_codes = set(local_concepts(system for _, system in self.files.get("CodeSystem", [])))
        for name, resource in self.files.get("ValueSet", []):
            key = resource.get("name")
            if not key:
                self.problem(name, "name", "a value set needs a name; rules refer to it by name")
                continue
            if key in found:
                self.problem(name, "name", f"value set name '{key}' is used twice")
                continue
            valueset, problems = compile_valueset(resource)
            for message in problems:
                self.problem(name, "", message)
            self.local_codes_defined(name, resource, local_codes)
            found[key] = valueset
        return found

    def local_codes_defined(self, file: str, resource: dict[str, Any], defined: set[str]) -> None:
        """A value set may use a code of our own code system only if the CodeSystem publishes it (V2-32):
        that file is what integrators read to know what to send."""
        for part in ("include", "exclude"):
            for index, include in enumerate((resource.get("compose") or {}).get(part) or ()):
                if include.get("system") != canonical.LOCAL_CODES:
                    continue
                for position, concept in enumerate(include.get("concept") or ()):
                    if concept.get("code") not in defined:
                        self.problem(
                            file,
                            f"compose.{part}[{index}].concept[{position}].code",
                            f"local code '{concept.get('code')}' is not in the CodeSystem "
                            f"{canonical.LOCAL_CODES}",
                        )

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        self.param_types: dict[str, str] = {}
        for name, resource in self.files.get("Library", []):
            for index, parameter in enumerate(resource.get("parameter") or ()):
                where = f"parameter[{index}]"
                key, kind = parameter.get("name"), parameter.get("type")
                if key in params:
                    self.problem(name, where, f"parameter '{key}' is declared twice")
                    continue
                default = _default_value(parameter)
                if kind not in PARAMETER_TYPES or not _typed(default, kind):
                    self.problem(
                        name,
                        where,
                        f"parameter '{key}' needs a cqf-defaultValue of a type in {list(PARAMETER_TYPES)}",
                    )
                    continue
                params[key] = default
                self.param_types[key] = kind
                for path, message in self.bounds.declare(name, where, parameter, kind):
                    self.problem(name, path, message)
        self.apply_site_parameters(params)
        return params

    def apply_site_parameters(self, params: dict[str, Any]) -> None:
        if self.parameters_file is None:
            return
        name = str(self.parameters_file)
        try:
            resource = orjson.loads(self.parameters_file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as error:
            self.problem(name, "", f"cannot read site parameters: {error}")
            return
        if not isinstance(resource, dict) or resource.get("resourceType") != "Parameters":
            self.problem(name, "resourceType", "site parameters must be a FHIR Parameters resource")
            return
        for index, parameter in enumerate(resource.get("parameter") or ()):
            key = parameter.get("name")
            if key not in params:
                self.problem(name, f"parameter[{index}]", f"unknown parameter '{key}'")
                continue
            element = PARAMETER_TYPES[self.param_types[key]][0]
            value = parameter.get(element)
            if not _typed(value, self.param_types[key]):
                self.problem(name, f"parameter[{index}]", f"'{key}' needs {element}")
                continue
            if refused := self.bounds.outside(key, value):
                self.problem(name, f"parameter[{index}].{element}", refused)
                continue
            params[key] = value

    def fact_sources(self) -> Iterator[tuple[str, str, str, str, Any]]:
        """(file, path, name, description, rule) for every fact of every Library."""
        for name, resource in self.files.get("Library", []):
            for index, extension in enumerate(resource.get("extension") or ()):
                if extension.get("url") != canonical.FACT:
                    continue
                where = f"extension[{index}].valueExpression"
                expression = extension.get("valueExpression") or {}
                rule = self.parse_expression(name, where, expression)
                if rule is not _INVALID:
                    yield name, where, expression.get("name", ""), expression.get("description", ""), rule

    def parse_expression(self, file: str, where: str, expression: dict[str, Any]) -> Any:
        if expression.get("language") != canonical.LANGUAGE:
            self.problem(file, f"{where}.language", f"language must be '{canonical.LANGUAGE}'")
            return _INVALID
        try:
            return orjson.loads(expression.get("expression") or "")
        except orjson.JSONDecodeError as error:
            self.problem(file, f"{where}.expression", f"not JSON: {error}")
            return _INVALID

    def compile(self, engine: Engine, file: str, where: str, rule: Any) -> Evaluator | None:
        try:
            compiled = engine.compile(rule)
        except LogicError as error:
            inside = "" if error.path == "$" else f" (at {error.path} in the rule)"
            self.problem(file, f"{where}.expression", f"{error.reason}{inside}")
            return None
        for inside, reason in self.types.mixed_comparisons(rule):
            self.problem(file, f"{where}.expression", f"{reason} (at {inside} in the rule)")
        return compiled

    # -- plan definitions --------------------------------------------------------------------------------

    def plan(
        self, file: str, resource: dict[str, Any], vocabulary: Vocabulary, names: set[str]
    ) -> Plan | None:
        criteria_sources = [
            (index, ext)
            for index, ext in enumerate(resource.get("extension") or ())
            if ext.get("url") == canonical.CRITERION
        ]
        codes = [_sub(ext, "code", "valueString") for _, ext in criteria_sources]
        for position, (index, _) in enumerate(criteria_sources):
            if codes[position] in codes[:position]:
                self.problem(
                    file,
                    f"extension[{index}]",
                    f"criterion code '{codes[position]}' is declared twice in this plan definition",
                )
        engine = clinical_engine(
            Vocabulary(vocabulary.facts, vocabulary.valuesets, vocabulary.params, codes, vocabulary.plans)
        )
        self.unmet_width = self.widest_unmet([extension for _, extension in criteria_sources])
        criteria = []
        for index, extension in criteria_sources:
            criterion = self.criterion(file, f"extension[{index}]", extension, engine)
            if criterion is not None:
                criteria.append(criterion)
        for index, library in enumerate(resource.get("library") or ()):
            if library not in self.library_urls:
                self.problem(file, f"library[{index}]", f"no Library with url '{library}' is loaded")
        cards = []
        for index, action in enumerate(resource.get("action") or ()):
            card = self.card(file, f"action[{index}]", action, engine, names)
            if card is not None:
                cards.append(card)
        if not resource.get("action"):
            self.problem(file, "action", "a plan definition needs at least one action that produces a card")
        return Plan(
            id=resource.get("id", file),
            name=resource.get("name", ""),
            rules=tuple(_expressions(resource)),
            url=resource.get("url", ""),
            title=resource.get("title") or resource.get("name") or file,
            description=resource.get("description", ""),
            usage=resource.get("usage", ""),
            source_label=_own_string(resource, canonical.SOURCE_LABEL) or resource.get("title") or file,
            source_url=_first_url(resource.get("relatedArtifact")),
            criteria=tuple(criteria),
            cards=tuple(cards),
        )

    def criterion(self, file: str, where: str, extension: dict[str, Any], engine: Engine) -> Criterion | None:
        code = _sub(extension, "code", "valueString")
        expression = _sub(extension, "expression", "valueExpression")
        parts = _part_paths(extension, where)
        if not code or not isinstance(expression, dict):
            self.problem(
                file, where, "a criterion needs 'code' (valueString) and 'expression' (valueExpression)"
            )
            return None
        label = _sub(extension, "label", "valueString") or code
        missing = _sub(extension, "missing", "valueString") or ""
        not_required = _sub(extension, "not-required", "valueString") or ""
        if not missing:  # else a summary would fall back to the label, or worse, the code
            self.problem(
                file, where, f"criterion '{code}' needs 'missing': what a summary says when it is not met"
            )
        if _sub(extension, "requiredWhen", "valueExpression") is not None and not not_required:
            message = (
                f"criterion '{code}' has requiredWhen, so it needs 'not-required': why it does not apply"
            )
            self.problem(file, where, message)
        for part, text in (("label", label), ("missing", missing), ("not-required", not_required)):
            for placeholder in PLACEHOLDER.findall(text):
                if placeholder not in self.param_names:
                    message = f"unknown parameter '{{{{{placeholder}}}}}' (criterion texts show parameters)"
                    self.problem(file, f"{parts[part]}.valueString", message)
        compiled = self.expression(file, f"{parts['expression']}.valueExpression", expression, engine)
        required = _sub(extension, "requiredWhen", "valueExpression")
        compiled_required = (
            self.expression(file, f"{parts['requiredWhen']}.valueExpression", required, engine)
            if isinstance(required, dict)
            else None
        )
        breakdown = _sub(extension, "breakdown", "valueExpression")
        compiled_breakdown = (
            self.expression(file, f"{parts['breakdown']}.valueExpression", breakdown, engine)
            if isinstance(breakdown, dict)
            else None
        )
        if compiled is None:
            return None
        return Criterion(
            code=code,
            label=label,
            expression=compiled,
            required_when=compiled_required,
            citation=_sub(extension, "citation", "valueString") or "",
            breakdown=compiled_breakdown,
            rule=_rule_of(expression),
            required_rule=_rule_of(required),
            source=f"{file}: {where}",
            missing=missing,
            not_required=not_required,
        )

    def expression(
        self, file: str, where: str, expression: dict[str, Any], engine: Engine
    ) -> Evaluator | None:
        rule = self.parse_expression(file, where, expression)
        return None if rule is _INVALID else self.compile(engine, file, where, rule)

    def card(
        self, file: str, where: str, action: dict[str, Any], engine: Engine, names: set[str]
    ) -> CardSpec | None:
        coding = _first_coding(action.get("code"))
        if coding is None or coding.get("system") != canonical.RULE_CODES:
            self.problem(
                file, f"{where}.code", f"an action needs a code from {canonical.RULE_CODES} (the rule id)"
            )
            return None
        hooks = {t.get("name") for t in action.get("trigger") or () if t.get("type") == "named-event"}
        for hook in hooks - set(HOOKS):
            self.problem(file, f"{where}.trigger", f"unknown hook '{hook}'; expected one of {list(HOOKS)}")
        if not hooks & set(HOOKS):
            self.problem(file, f"{where}.trigger", "an action needs a named-event trigger with a hook name")
        indicator = INDICATORS.get(action.get("priority", ""))
        if indicator is None:
            self.problem(
                file,
                f"{where}.priority",
                "priority must be routine (info), urgent (warning) or stat (critical)",
            )
        summary = action.get("title") or ""
        if not summary:
            self.problem(file, f"{where}.title", "the title is the card summary and is required")
        for field, template in (("title", summary), ("description", action.get("description") or "")):
            for placeholder in PLACEHOLDER.findall(template):
                if placeholder not in names:
                    self.problem(file, f"{where}.{field}", f"unknown placeholder '{{{{{placeholder}}}}}'")
        placeholders = PLACEHOLDER.findall(summary)
        widest = summary_width(
            self.types, PLACEHOLDER.sub("", summary), placeholders, {"unmet": self.unmet_width, "draft": None}
        )
        if widest is None or widest > SUMMARY_MAX:
            reach = "has no limit" if widest is None else f"can reach {widest} characters"
            self.problem(
                file,
                f"{where}.title",
                f"the summary {reach} once {', '.join(f'{{{{{p}}}}}' for p in placeholders)} is filled; "
                f"a card summary must stay under {SUMMARY_MAX + 1}",
            )
        conditions = self.conditions(file, where, action, engine)
        per_draft = self.per_draft(file, where, action, engine)
        if indicator is None or not summary:
            return None
        return CardSpec(
            rule_id=coding["code"],
            topic_system=coding["system"],
            topic_display=coding.get("display", coding["code"]),
            hooks=frozenset(hooks & set(HOOKS)),
            indicator=indicator,
            summary=summary,
            detail=action.get("description"),
            conditions=tuple(conditions),
            per_draft=per_draft,
            suggestions=tuple(self.suggestions(file, where, action, engine)),
            links=tuple(
                (doc.get("display") or doc["url"], doc["url"])
                for doc in action.get("documentation") or ()
                if doc.get("url")
            ),
            override_reasons=self.shared_override_reasons
            if indicator == "warning" and hooks & ORDER_HOOKS
            else (),
            condition_rules=tuple(_rule_of(c.get("expression")) for c in action.get("condition") or ()),
        )

    def widest_unmet(self, criteria: list[dict[str, Any]]) -> int | None:
        """The longest `{{unmet}}` of a plan: its three widest `missing` phrases, with parameters at their
        widest allowed value, and "+N more" (see `cards.unmet_phrases`)."""
        widest = {**self.params, **{key: b.maximum for key, b in self.bounds.declared.items()}}
        phrases = sorted(
            (
                len(
                    fill_parameters(
                        _sub(ext, "missing", "valueString") or _sub(ext, "code", "valueString") or "", widest
                    )
                )
                for ext in criteria
            ),
            reverse=True,
        )
        shown = phrases[:UNMET_SHOWN]
        more = len(phrases) - len(shown)
        return (
            sum(shown)
            + len(UNMET_SEPARATOR) * max(len(shown) - 1, 0)
            + (len(f" +{more} more") if more else 0)
        )

    def override_reasons(self, file: str, where: str, resource: dict[str, Any]) -> Iterator[dict[str, str]]:
        """The shared list a Library declares, offered on every warning at an order hook (V2-29)."""
        for index, extension in enumerate(resource.get("extension") or ()):
            if extension.get("url") != canonical.OVERRIDE_REASON:
                continue
            coding = extension.get("valueCoding") or {}
            if not all(isinstance(coding.get(key), str) for key in ("system", "code", "display")):
                self.problem(
                    file,
                    _child(where, f"extension[{index}]"),
                    "an override reason needs system, code and display",
                )
                continue
            yield {key: coding[key] for key in ("system", "code", "display")}

    def conditions(
        self, file: str, where: str, action: dict[str, Any], engine: Engine
    ) -> tuple[Evaluator, ...]:
        compiled = []
        for index, condition in enumerate(action.get("condition") or ()):
            location = f"{where}.condition[{index}]"
            if condition.get("kind") != "applicability":
                self.problem(file, f"{location}.kind", "only applicability conditions are supported")
                continue
            function = self.expression(
                file, f"{location}.expression", condition.get("expression") or {}, engine
            )
            if function is not None:
                compiled.append(function)
        return tuple(compiled)

    def per_draft(self, file: str, where: str, action: dict[str, Any], engine: Engine) -> str | None:
        inputs = action.get("input") or ()
        if not inputs:
            return None
        filters = inputs[0].get("codeFilter") or ()
        reference = filters[0].get("valueSet") if filters else None
        valueset = self.valueset_urls.get(reference, reference) if isinstance(reference, str) else None
        if valueset not in self.valueset_names:
            self.problem(file, f"{where}.input[0].codeFilter[0].valueSet", f"unknown value set '{reference}'")
            return None
        return valueset

    def suggestions(
        self, file: str, where: str, action: dict[str, Any], engine: Engine
    ) -> Iterator[SuggestionSpec]:
        contained = {f"#{r.get('id')}": r for r in self.current_contained}
        for index, sub in enumerate(action.get("action") or ()):
            label = sub.get("title")
            conditions = self.conditions(file, f"{where}.action[{index}]", sub, engine)
            kind = (_first_coding(sub.get("type")) or {}).get("code", "create")
            if not label:
                self.problem(
                    file, f"{where}.action[{index}].title", "a suggestion needs a title (its button label)"
                )
                continue
            if kind == "remove":
                yield SuggestionSpec(label=label, kind="remove", conditions=conditions)
                continue
            activity = contained.get(sub.get("definitionCanonical", ""))
            if kind != "create" or activity is None or activity.get("resourceType") != "ActivityDefinition":
                self.problem(
                    file,
                    f"{where}.action[{index}]",
                    "a suggestion is a 'remove', or a 'create' from a contained ActivityDefinition (#id)",
                )
                continue
            yield SuggestionSpec(
                label=label,
                kind="create",
                activity=activity,
                recommended=sub.get("priority") == "urgent",
                conditions=conditions,
            )

    # -- whole set ---------------------------------------------------------------------------------------

    def load(self) -> RuleSet:
        self.read()
        if self.site_dir is not None:  # a site's codes join the bundled value sets before they compile
            site = SiteFolder(self.site_dir, self.problem, self.validate_fhir)
            self.parameters_file = site.merge(self.files, self.parameters_file)
        valuesets = self.valuesets()
        self.valueset_names = set(valuesets)
        self.valueset_urls = {vs.url: name for name, vs in valuesets.items() if vs.url}
        params = self.parameters()
        self.params = params
        self.param_names = set(params)
        sources = list(self.fact_sources())
        fact_names = [name for _, _, name, _, _ in sources]
        for file, where, name, _, _ in sources:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9\-.]{0,63}", name or ""):
                self.problem(
                    file, f"{where}.name", f"fact name '{name}' must be a FHIR id starting with a letter"
                )
            elif fact_names.count(name) > 1:
                self.problem(file, f"{where}.name", f"fact '{name}' is defined twice")
        self.library_urls = {resource.get("url") for _, resource in self.files.get("Library", [])}
        self.shared_override_reasons = tuple(
            reason
            for file, library in self.files.get("Library", [])
            for reason in self.override_reasons(file, "", library)
        )
        for file, resource in self.files.get("PlanDefinition", []):
            for index, action in enumerate(resource.get("action") or ()):
                if any(ext.get("url") == canonical.OVERRIDE_REASON for ext in action.get("extension") or ()):
                    message = "override reasons are one shared list, declared on a Library (V2-29)"
                    self.problem(file, f"action[{index}].extension", message)
        plan_ids = {str(resource.get("id")) for _, resource in self.files.get("PlanDefinition", [])}
        vocabulary = Vocabulary(set(fact_names), self.valueset_names, set(params), plans=plan_ids)
        engine = clinical_engine(vocabulary)
        maxima = {key: bounds.maximum for key, bounds in self.bounds.declared.items()}
        plan_codes = {
            str(resource.get("id")): frozenset(
                str(_sub(extension, "code", "valueString"))
                for extension in resource.get("extension") or ()
                if extension.get("url") == canonical.CRITERION
            )
            for _, resource in self.files.get("PlanDefinition", [])
        }
        self.types = RuleTypes({name: rule for _, _, name, _, rule in sources}, params, maxima, plan_codes)
        facts = {}
        rules = {}
        library_ids = {file: str(resource.get("id")) for file, resource in self.files.get("Library", [])}
        for file, where, name, description, rule in sources:
            compiled = self.compile(engine, file, where, rule)
            if compiled is not None:
                facts[name] = Fact(name, description, compiled, rule, f"{file}: {where}", library_ids[file])
                rules[name] = rule
        draft_dependent = self.dependencies(sources, rules)
        names = set(fact_names) | set(params) | SPECIAL_PLACEHOLDERS
        plans = []
        plan_rules: dict[str, list[Any]] = {}
        for file, resource in self.files.get("PlanDefinition", []):
            self.current_contained = resource.get("contained") or ()
            plan = self.plan(file, resource, vocabulary, names)
            if plan is not None:
                plans.append(plan)
                plan_rules[plan.id] = list(plan.rules)
        if not plans:
            self.problem(str(self.directory), "", "no PlanDefinition found")
        self.rule_owners()
        self.problems += questionnaire_problems(  # the screen's answers reach the rules (V2-32)
            self.files.get("Questionnaire", []),
            (system for _, system in self.files.get("CodeSystem", [])),
            valuesets,
            rules,
            plan_rules,
        )
        prefetch = derive_prefetch(plans, plan_rules, rules, valuesets)
        for hook, templates in prefetch.items():
            for key, template in templates.items():
                for message in check_template(template, CONTEXT_FIELDS):
                    self.problem(str(self.directory), f"prefetch[{hook}].{key}", message)
                for name in unsearchable(template):
                    message = f"'{name}' is not a FHIR R4 search parameter of {template.partition('?')[0]}"
                    self.problem(str(self.directory), f"prefetch[{hook}].{key}", message)
        if self.problems:
            raise RuleSetError(self.problems)
        questionnaires = (resource for _, resource in self.files.get("Questionnaire", []))
        plans = with_capture(plans, questionnaires, valuesets, rules)  # what a card's SMART link records
        ruleset = RuleSet(
            plans=tuple(plans),
            facts=facts,
            draft_dependent=draft_dependent,
            valuesets=valuesets,
            params=params,
            prefetch=prefetch,
            record_names=RecordNames(  # draft-order triggers ("Revision orders") never name a procedure
                {
                    name: valueset
                    for name, valueset in valuesets.items()
                    if name not in {card.per_draft for plan in plans for card in plan.cards}
                }
            ),
            param_descriptions={
                parameter["name"]: parameter.get("documentation", "")
                for _, library in self.files.get("Library", [])
                for parameter in library.get("parameter") or ()
                if parameter.get("name") in params
            },
            artifacts={
                kind: {str(resource.get("id")): resource for _, resource in resources}
                for kind, resources in self.files.items()
            },
        )
        return replace(ruleset, artifacts=with_data_requirements(ruleset))

    def rule_owners(self) -> None:
        """A rule id belongs to one plan definition: a copied file would otherwise show every card twice.
        (One plan may use a rule id in several actions, e.g. one per hook.)"""
        owners: dict[str, str] = {}
        for file, resource in self.files.get("PlanDefinition", []):
            for index, action in enumerate(resource.get("action") or ()):
                coding = _first_coding(action.get("code"))
                if coding is None or not isinstance(coding.get("code"), str):
                    continue
                owner = owners.setdefault(coding["code"], file)
                if owner != file:
                    self.problem(
                        file,
                        f"action[{index}].code",
                        f"rule id '{coding['code']}' is used by {owner} too; a rule id belongs to one plan",
                    )

    def dependencies(
        self, sources: list[tuple[str, str, str, str, Any]], rules: dict[str, Any]
    ) -> frozenset[str]:
        """Reject cycles between facts; return the facts that read the draft order in focus."""
        reads = {name: set(_operands(rule, "fact")) for name, rule in rules.items()}
        # another plan's criteria may read the draft order in focus, so a fact reading them is recomputed too
        draft_readers = {name for name, rule in rules.items() if _uses(rule, "draft") or _uses(rule, "unmet")}
        where = {name: (file, path) for file, path, name, _, _ in sources}
        state: dict[str, int] = {}

        def visit(name: str, stack: list[str]) -> bool:
            if state.get(name) == 1:
                file, path = where[name]
                self.problem(
                    file, path, "facts refer to each other in a cycle: " + " -> ".join([*stack, name])
                )
                return False
            if state.get(name) == 2:
                return name in draft_readers
            state[name] = 1
            reads_draft = name in draft_readers
            for dependency in reads.get(name, ()):
                if dependency in rules and visit(dependency, [*stack, name]):
                    reads_draft = True
            state[name] = 2
            if reads_draft:
                draft_readers.add(name)
            return reads_draft

        for name in rules:
            visit(name, [])
        return frozenset(draft_readers)


_INVALID = object()


def _default_value(parameter: dict[str, Any]) -> Any:
    for extension in parameter.get("extension") or ():
        if extension.get("url") == canonical.DEFAULT_VALUE:
            for key, value in extension.items():
                if key.startswith("value"):
                    return value
    return None


def _typed(value: Any, kind: str | None) -> bool:
    if kind not in PARAMETER_TYPES or value is None:
        return False
    python_type = PARAMETER_TYPES[kind][1]
    return isinstance(value, python_type) and (kind == "boolean" or not isinstance(value, bool))


def _own_string(resource: dict[str, Any], url: str) -> str | None:
    for extension in resource.get("extension") or ():
        if extension.get("url") == url and isinstance(extension.get("valueString"), str):
            return str(extension["valueString"])
    return None


def _sub(extension: dict[str, Any], url: str, element: str) -> Any:
    for sub in extension.get("extension") or ():
        if sub.get("url") == url:
            value: Any = sub.get(element)
            return value
    return None


def _part_paths(extension: dict[str, Any], where: str) -> dict[str, str]:
    """Where each part of a criterion extension is written: `extension[5].extension[2]`."""
    paths: dict[str, str] = {}
    for index, sub in enumerate(extension.get("extension") or ()):
        if isinstance(sub, dict) and isinstance(sub.get("url"), str):
            paths.setdefault(sub["url"], f"{where}.extension[{index}]")
    return paths


def _first_coding(concepts: Any) -> dict[str, Any] | None:
    if isinstance(concepts, dict):
        concepts = [concepts]
    for concept in concepts or ():
        for coding in concept.get("coding") or ():
            first: dict[str, Any] = coding
            return first
    return None


def _rule_of(expression: Any) -> Any:
    """An expression's JSON-Logic as written, kept for people reading the rules (None when it is not
    JSON, which is reported where it is compiled)."""
    if isinstance(expression, dict):
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(expression.get("expression") or "")
    return None


def _first_url(artifacts: Any) -> str | None:
    for artifact in artifacts or ():
        if isinstance(artifact.get("url"), str) and artifact["url"]:
            url: str = artifact["url"]
            return url
    return None


def _operands(rule: Any, operator: str) -> Iterator[Any]:
    for name, args in walk(rule):
        if name == operator and args:
            yield args[0]


def _uses(rule: Any, operator: str) -> bool:
    return any(name == operator for name, _ in walk(rule))


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _own_extension_problems(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Extensions in this project's namespace that the loader does not know, and criterion parts it does
    not read: a misspelt URL would otherwise make a checklist line or a fact silently disappear."""

    def visit(node: Any, path: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, list):
            for index, item in enumerate(node):
                yield from visit(item, f"{path}[{index}]")
            return
        if not isinstance(node, dict):
            return
        url = node.get("url")
        if (
            isinstance(url, str)
            and url.startswith(canonical.OWN_EXTENSIONS)
            and url not in canonical.EXTENSIONS
        ):
            yield _child(path, "url"), f"unknown extension '{url}'; ours are {sorted(canonical.EXTENSIONS)}"
        if url == canonical.CRITERION:
            for index, part in enumerate(node.get("extension") or ()):
                name = part.get("url") if isinstance(part, dict) else None
                if name not in canonical.CRITERION_PARTS:
                    yield (
                        f"{_child(path, 'extension')}[{index}].url",
                        f"unknown criterion part '{name}'; expected one of {list(canonical.CRITERION_PARTS)}",
                    )
        for key, value in node.items():
            yield from visit(value, _child(path, key))

    yield from visit(resource, "")


def _expressions(resource: dict[str, Any]) -> list[Any]:
    """Every JSON-Logic rule inside a plan definition, for deriving the data it reads."""
    found = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("language") == canonical.LANGUAGE and isinstance(node.get("expression"), str):
                with contextlib.suppress(orjson.JSONDecodeError):  # reported where it is compiled
                    found.append(orjson.loads(node["expression"]))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(resource)
    for action in resource.get("action") or ():
        for text in (action.get("title") or "", action.get("description") or ""):
            found.extend({"fact": name} for name in PLACEHOLDER.findall(text))
    return found


def load_ruleset(
    directory: Path, parameters_file: Path | None = None, site_dir: Path | None = None
) -> RuleSet:
    """Load and compile a plan-definition folder (with a site folder's additions); raise RuleSetError
    listing every problem."""
    return Loader(directory, parameters_file, site_dir).load()
