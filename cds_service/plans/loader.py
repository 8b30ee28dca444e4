"""Load the plan-definition folder: parse, validate as FHIR R4, cross-check, and compile.

Every problem is collected (not just the first) with its file and JSON path, so `cds-service validate`
shows a rule author the whole list at once. Nothing here runs per request.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from ..fhir import check as check_template
from ..logic import Engine, LogicError
from ..protocol.request import HOOKS
from ..types import Evaluator
from . import canonical
from .engine import clinical_engine
from .errors import Problem, RuleSetError
from .model import CardSpec, Criterion, Fact, Indicator, Plan, RuleSet, SuggestionSpec
from .prefetch_templates import derive_prefetch
from .rulewalk import walk
from .terminology import ValueSet, compile_valueset
from .vocabulary import Vocabulary

CONTEXT_FIELDS = ("userId", "patientId", "encounterId")
PLACEHOLDER = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
SPECIAL_PLACEHOLDERS = frozenset({"unmet", "checklist", "draft"})
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

    def __init__(self, directory: Path, parameters_file: Path | None = None) -> None:
        self.directory = directory
        self.parameters_file = parameters_file
        self.problems: list[Problem] = []
        self.files: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    def problem(self, file: str, path: str, message: str) -> None:
        self.problems.append(Problem(file, path, message))

    # -- reading -----------------------------------------------------------------------------------------

    def read(self) -> None:
        if not self.directory.is_dir():
            self.problem(str(self.directory), "$", "plan-definition folder not found")
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
                self.problem(name, "$", f"invalid JSON: {error}")
                continue
            if not isinstance(resource, dict):
                self.problem(name, "$", "a file must hold one FHIR resource (a JSON object)")
                continue
            kind = resource.get("resourceType")
            if kind not in {"PlanDefinition", "Library", "ValueSet"}:
                self.problem(name, "$.resourceType", "expected PlanDefinition, Library or ValueSet")
                continue
            if self.validate_fhir(name, kind, resource):
                self.files.setdefault(kind, []).append((name, resource))
                for where, message in _own_extension_problems(resource):
                    self.problem(name, where, message)

    def validate_fhir(self, name: str, kind: str, resource: dict[str, Any]) -> bool:
        try:
            _fhir_model(kind).model_validate(resource)
        except ValidationError as error:
            for item in error.errors(include_url=False, include_input=False):
                parts = [p for p in item["loc"] if p not in {"root", "__root__"}]  # pydantic wrapper names
                location = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
                self.problem(name, location, f"not valid FHIR R4: {item['msg']}")
            return False
        if resource.get("status") not in {"draft", "active", "retired", "unknown"}:
            self.problem(name, "$.status", "status must be draft, active, retired or unknown")
            return False
        return True

    # -- value sets and libraries ------------------------------------------------------------------------

    def valuesets(self) -> dict[str, ValueSet]:
        found: dict[str, ValueSet] = {}
        for name, resource in self.files.get("ValueSet", []):
            key = resource.get("name")
            if not key:
                self.problem(name, "$.name", "a value set needs a name; rules refer to it by name")
                continue
            if key in found:
                self.problem(name, "$.name", f"value set name '{key}' is used twice")
                continue
            valueset, problems = compile_valueset(resource)
            for message in problems:
                self.problem(name, "$", message)
            found[key] = valueset
        return found

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        self.param_types: dict[str, str] = {}
        for name, resource in self.files.get("Library", []):
            for index, parameter in enumerate(resource.get("parameter") or ()):
                where = f"$.parameter[{index}]"
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
        self.apply_site_parameters(params)
        return params

    def apply_site_parameters(self, params: dict[str, Any]) -> None:
        if self.parameters_file is None:
            return
        name = str(self.parameters_file)
        try:
            resource = orjson.loads(self.parameters_file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as error:
            self.problem(name, "$", f"cannot read site parameters: {error}")
            return
        if not isinstance(resource, dict) or resource.get("resourceType") != "Parameters":
            self.problem(name, "$.resourceType", "site parameters must be a FHIR Parameters resource")
            return
        for index, parameter in enumerate(resource.get("parameter") or ()):
            key = parameter.get("name")
            if key not in params:
                self.problem(name, f"$.parameter[{index}]", f"unknown parameter '{key}'")
                continue
            element = PARAMETER_TYPES[self.param_types[key]][0]
            value = parameter.get(element)
            if not _typed(value, self.param_types[key]):
                self.problem(name, f"$.parameter[{index}]", f"'{key}' needs {element}")
                continue
            params[key] = value

    def fact_sources(self) -> Iterator[tuple[str, str, str, str, Any]]:
        """(file, path, name, description, rule) for every fact of every Library."""
        for name, resource in self.files.get("Library", []):
            for index, extension in enumerate(resource.get("extension") or ()):
                if extension.get("url") != canonical.FACT:
                    continue
                where = f"$.extension[{index}].valueExpression"
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
            return engine.compile(rule)
        except LogicError as error:
            self.problem(file, f"{where}.expression {error.path}", error.reason)
            return None

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
                    f"$.extension[{index}]",
                    f"criterion code '{codes[position]}' is declared twice in this plan definition",
                )
        engine = clinical_engine(Vocabulary(vocabulary.facts, vocabulary.valuesets, vocabulary.params, codes))
        criteria = []
        for index, extension in criteria_sources:
            criterion = self.criterion(file, f"$.extension[{index}]", extension, engine)
            if criterion is not None:
                criteria.append(criterion)
        for index, library in enumerate(resource.get("library") or ()):
            if library not in self.library_urls:
                self.problem(file, f"$.library[{index}]", f"no Library with url '{library}' is loaded")
        cards = []
        for index, action in enumerate(resource.get("action") or ()):
            card = self.card(file, f"$.action[{index}]", action, engine, names)
            if card is not None:
                cards.append(card)
        if not resource.get("action"):
            self.problem(file, "$.action", "a plan definition needs at least one action that produces a card")
        return Plan(
            id=resource.get("id", file),
            url=resource.get("url", ""),
            title=resource.get("title") or resource.get("name") or file,
            description=resource.get("description", ""),
            usage=resource.get("usage", ""),
            source_label=resource.get("publisher") or "Post-fusion pain CDS",
            source_url=_first_url(resource.get("relatedArtifact")),
            criteria=tuple(criteria),
            cards=tuple(cards),
        )

    def criterion(self, file: str, where: str, extension: dict[str, Any], engine: Engine) -> Criterion | None:
        code = _sub(extension, "code", "valueString")
        expression = _sub(extension, "expression", "valueExpression")
        if not code or not isinstance(expression, dict):
            self.problem(
                file, where, "a criterion needs 'code' (valueString) and 'expression' (valueExpression)"
            )
            return None
        compiled = self.expression(file, f"{where}.expression", expression, engine)
        required = _sub(extension, "requiredWhen", "valueExpression")
        compiled_required = (
            self.expression(file, f"{where}.requiredWhen", required, engine)
            if isinstance(required, dict)
            else None
        )
        breakdown = _sub(extension, "breakdown", "valueExpression")
        compiled_breakdown = (
            self.expression(file, f"{where}.breakdown", breakdown, engine)
            if isinstance(breakdown, dict)
            else None
        )
        if compiled is None:
            return None
        return Criterion(
            code=code,
            label=_sub(extension, "label", "valueString") or code,
            expression=compiled,
            required_when=compiled_required,
            citation=_sub(extension, "citation", "valueString") or "",
            breakdown=compiled_breakdown,
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
            override_reasons=tuple(self.override_reasons(file, where, action)),
        )

    def override_reasons(self, file: str, where: str, action: dict[str, Any]) -> Iterator[dict[str, str]]:
        for index, extension in enumerate(action.get("extension") or ()):
            if extension.get("url") != canonical.OVERRIDE_REASON:
                continue
            coding = extension.get("valueCoding") or {}
            if not all(isinstance(coding.get(key), str) for key in ("system", "code", "display")):
                self.problem(
                    file, f"{where}.extension[{index}]", "an override reason needs system, code and display"
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
        valuesets = self.valuesets()
        self.valueset_names = set(valuesets)
        self.valueset_urls = {vs.url: name for name, vs in valuesets.items() if vs.url}
        params = self.parameters()
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
        vocabulary = Vocabulary(set(fact_names), self.valueset_names, set(params))
        engine = clinical_engine(vocabulary)
        facts = {}
        rules = {}
        for file, where, name, description, rule in sources:
            compiled = self.compile(engine, file, where, rule)
            if compiled is not None:
                facts[name] = Fact(name, description, compiled)
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
                plan_rules[plan.id] = _expressions(resource)
        if not plans:
            self.problem(str(self.directory), "$", "no PlanDefinition found")
        self.rule_owners()
        prefetch = derive_prefetch(plans, plan_rules, rules, valuesets)
        for hook, templates in prefetch.items():
            for key, template in templates.items():
                for message in check_template(template, CONTEXT_FIELDS):
                    self.problem(str(self.directory), f"prefetch[{hook}].{key}", message)
        if self.problems:
            raise RuleSetError(self.problems)
        return RuleSet(
            plans=tuple(plans),
            facts=facts,
            draft_dependent=draft_dependent,
            valuesets=valuesets,
            params=params,
            prefetch=prefetch,
        )

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
                        f"$.action[{index}].code",
                        f"rule id '{coding['code']}' is used by {owner} too; a rule id belongs to one plan",
                    )

    def dependencies(
        self, sources: list[tuple[str, str, str, str, Any]], rules: dict[str, Any]
    ) -> frozenset[str]:
        """Reject cycles between facts; return the facts that read the draft order in focus."""
        reads = {name: set(_operands(rule, "fact")) for name, rule in rules.items()}
        draft_readers = {name for name, rule in rules.items() if _uses(rule, "draft")}
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


def _sub(extension: dict[str, Any], url: str, element: str) -> Any:
    for sub in extension.get("extension") or ():
        if sub.get("url") == url:
            value: Any = sub.get(element)
            return value
    return None


def _first_coding(concepts: Any) -> dict[str, Any] | None:
    if isinstance(concepts, dict):
        concepts = [concepts]
    for concept in concepts or ():
        for coding in concept.get("coding") or ():
            first: dict[str, Any] = coding
            return first
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
            yield f"{path}.url", f"unknown extension '{url}'; ours are {sorted(canonical.EXTENSIONS)}"
        if url == canonical.CRITERION:
            for index, part in enumerate(node.get("extension") or ()):
                name = part.get("url") if isinstance(part, dict) else None
                if name not in canonical.CRITERION_PARTS:
                    yield (
                        f"{path}.extension[{index}].url",
                        f"unknown criterion part '{name}'; expected one of {list(canonical.CRITERION_PARTS)}",
                    )
        for key, value in node.items():
            yield from visit(value, f"{path}.{key}")

    yield from visit(resource, "$")


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


def load_ruleset(directory: Path, parameters_file: Path | None = None) -> RuleSet:
    """Load and compile a plan-definition folder; raise RuleSetError listing every problem."""
    return Loader(directory, parameters_file).load()
