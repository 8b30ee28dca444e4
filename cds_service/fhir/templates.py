"""Prefetch templates: render them for a request and check them against the CDS Hooks 2.0 query subset.

Rendering is what the service does when a prefetch key is missing and it has to run the template itself
(spec: "the service fetches it from fhirServer"); checking is for catching bad templates at load time.
"""

import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote

__all__ = ["USER_TOKENS", "TemplateError", "check", "expand", "user_tokens"]


class TemplateError(ValueError):
    """A token could not be resolved. The message names the token, never a substituted value."""


USER_TOKENS = ("userPractitionerId", "userPractitionerRoleId", "userPatientId", "userRelatedPersonId")
_USER_TOKEN_BY_TYPE = {
    "Practitioner": "userPractitionerId",
    "PractitionerRole": "userPractitionerRoleId",
    "Patient": "userPatientId",
    "RelatedPerson": "userRelatedPersonId",
}

# Tokens may not contain braces, so a stray "{{" or "}}" is left over after substitution and is caught.
_TOKEN = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]+")
_FHIR_ID = re.compile(r"[A-Za-z0-9.-]{1,64}")
_PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_SORT_KEY = re.compile(r"-?_?[A-Za-z][A-Za-z0-9-]*")
_POSITIVE_INT = re.compile(r"0*[1-9][0-9]*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# Placeholder for a token while the URL structure is checked; a private-use character cannot clash.
_MARK = "\ue000"
_BAD_PREFIX = re.compile(rf"(ne|sa|eb|ap)(\d|{_MARK})")


def user_tokens(user_id: str | None) -> dict[str, str]:
    """Map the hook's `userId` ("Practitioner/123") to the 2.0 user prefetch token it fills."""
    if not user_id:
        return {}
    resource_type, _, resource_id = user_id.partition("/")
    token = _USER_TOKEN_BY_TYPE.get(resource_type)
    if token is None or not resource_id or "/" in resource_id:
        return {}
    return {token: resource_id}


def expand(template: str, context: Mapping[str, object], user: Mapping[str, str]) -> str:
    """Substitute and URL-encode every token; refuse rather than send a half-rendered query."""
    leftover = _TOKEN.sub("", template)
    if "{" in leftover or "}" in leftover:
        raise TemplateError("template has an unbalanced '{{' or '}}'")
    return _TOKEN.sub(lambda m: quote(_resolve(m.group(1), context, user), safe=""), template)


def _shown(expr: str) -> str:
    return "{{" + expr + "}}"


def _resolve(expr: str, context: Mapping[str, object], user: Mapping[str, str]) -> str:
    if expr.startswith("context."):
        field = expr.removeprefix("context.")
        if not _FIELD.fullmatch(field):
            raise TemplateError(f"token {_shown(expr)}: only first-level context fields can be tokens")
        if field not in context:
            raise TemplateError(f"token {_shown(expr)}: the context has no field {field!r}")
        value = context[field]
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, str) and value:
            return value
        raise TemplateError(f"token {_shown(expr)}: context.{field} is not a non-empty string, int or bool")
    if expr in USER_TOKENS:
        value = user.get(expr)
        if not value:
            raise TemplateError(f"token {_shown(expr)}: the request's userId is not of that resource type")
        return value
    raise TemplateError(f"token {_shown(expr)} is not a CDS Hooks 2.0 prefetch token")


def check(template: str, context_fields: Iterable[str]) -> list[str]:
    """List what keeps a template out of the spec's recommended prefetch subset (empty list = fine)."""
    if not template.strip():
        return ["template is empty"]
    fields = set(context_fields)
    problems = [p for m in _TOKEN.finditer(template) if (p := _token_problem(m.group(1), fields))]
    skeleton = _TOKEN.sub(_MARK, template)
    if "{" in skeleton or "}" in skeleton:
        problems.append("unbalanced '{{' or '}}'")
    if any(ch.isspace() for ch in skeleton):
        problems.append("whitespace outside tokens; URL-encode it")
    if "#" in skeleton:
        problems.append("a fragment ('#') is not allowed")
    path, has_query, query = skeleton.partition("?")
    if path.startswith("/") or _SCHEME.match(path):
        return [*problems, "must be a relative URL such as 'Patient/{{context.patientId}}'"]
    resource_type, *ids = path.split("/")
    if not _RESOURCE_TYPE.fullmatch(resource_type):
        problems.append(f"{_display(resource_type)!r} is not a FHIR resource type")
    if len(ids) > 1:
        problems.append("only instance reads (Type/id) and type-level searches (Type?params) are allowed")
    elif ids:
        if ids[0] != _MARK and not _FHIR_ID.fullmatch(ids[0]):
            problems.append(f"{_display(ids[0])!r} is not a FHIR id or a single token")
        if has_query:
            problems.append("an instance read takes no query parameters")
    elif query:
        problems.extend(p for param in query.split("&") for p in _param_problems(param))
    return problems


def _display(text: str) -> str:
    return text.replace(_MARK, "{{…}}")


def _token_problem(expr: str, fields: set[str]) -> str | None:
    if expr in USER_TOKENS:
        return None
    if not expr.startswith("context."):
        return f"{_shown(expr)} is not a CDS Hooks 2.0 prefetch token (context.<field> or a user token)"
    field = expr.removeprefix("context.")
    if not _FIELD.fullmatch(field):
        return f"{_shown(expr)}: only first-level context fields can be tokens"
    if field not in fields:
        return f"{_shown(expr)}: {field!r} is not a context field of this hook"
    return None


def _param_problems(param: str) -> list[str]:
    name, has_value, value = param.partition("=")
    shown = _display(param)
    if not name:
        return [f"empty parameter {shown!r}"]
    if _MARK in name:
        return [f"{shown!r}: tokens are only allowed in the resource id and in parameter values"]
    if not has_value or not value:
        return [f"parameter {shown!r} has no value"]
    base, _, modifier = unquote(name).partition(":")
    if "." in unquote(name):
        return [f"{shown!r}: chained parameters are not allowed"]
    if base.startswith("_"):
        return _control_param_problems(base, modifier, value, shown)
    if not _PARAM_NAME.fullmatch(base):
        return [f"{shown!r}: {base!r} is not a search parameter name"]
    problems = []
    if modifier and modifier != "in":
        problems.append(f"{shown!r}: modifier ':{modifier}' is not allowed (only ':in')")
    for item in unquote(value).split(","):
        if not item:
            problems.append(f"{shown!r}: empty value in the list")
        elif _BAD_PREFIX.match(item):
            problems.append(f"{shown!r}: prefix {item[:2]!r} is not allowed (only eq, lt, gt, ge, le)")
    return problems


def _control_param_problems(base: str, modifier: str, value: str, shown: str) -> list[str]:
    if base not in ("_count", "_sort"):
        return [f"{shown!r}: {base} is not in the prefetch subset (only _count and _sort)"]
    if modifier:
        return [f"{shown!r}: {base} takes no modifier"]
    if base == "_count" and value != _MARK and not _POSITIVE_INT.fullmatch(value):
        return [f"{shown!r}: _count must be a positive integer"]
    if base == "_sort" and not all(_SORT_KEY.fullmatch(key) for key in unquote(value).split(",")):
        return [f"{shown!r}: _sort must be a comma list of parameter names, each optionally prefixed '-'"]
    return []
