"""An answer checked against its Questionnaire item: the value[x] its type allows, one of its options, in its
unit. The reasons name the expected type, never the value given (it may be patient data)."""

from __future__ import annotations

import re
from typing import Any

from ..plans.questionnaires import UNIT, extension_value
from ..record.dates import parse_instant

UCUM = "http://unitsofmeasure.org"
ANSWER_KEYS: dict[str, tuple[str, ...]] = {
    "boolean": ("valueBoolean",),
    "decimal": ("valueDecimal",),
    "integer": ("valueInteger",),
    "date": ("valueDate",),
    "dateTime": ("valueDateTime",),
    "time": ("valueTime",),
    "string": ("valueString",),
    "text": ("valueString",),
    "url": ("valueUri",),
    "choice": ("valueCoding",),
    "open-choice": ("valueCoding", "valueString"),
    "quantity": ("valueQuantity",),
    "reference": ("valueReference",),
    "attachment": ("valueAttachment",),
}
DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


class AnswerError(ValueError):
    """Why an answer does not fit its item, in plain words."""


def checked(item: dict[str, Any], answer: Any) -> tuple[str, Any]:
    """(value key, value) of an answer its item allows; a quantity comes back in the item's unit."""
    kind = str(item.get("type"))
    if kind in {"group", "display"}:
        raise AnswerError(f"a {kind} item takes no answer")
    keys = [key for key in answer if key.startswith("value")] if isinstance(answer, dict) else []
    if len(keys) != 1:
        raise AnswerError("an answer needs exactly one value[x]")
    key, value = keys[0], answer[keys[0]]
    allowed = ANSWER_KEYS.get(kind, ())
    if key not in allowed:
        raise AnswerError(f"a {kind} item is answered with {' or '.join(allowed) or 'nothing'}, not {key}")
    if not _well_formed(key, value):
        raise AnswerError(f"{key} is not a valid {kind}")
    if key == "valueCoding":
        _among_options(item, value)
    if key == "valueQuantity":
        value = _in_unit(item, value)
    return key, value


def item_unit(item: dict[str, Any]) -> dict[str, Any] | None:
    """The UCUM unit the item asks in (`questionnaire-unitOption`), as a Coding."""
    unit = extension_value(item, UNIT)
    return unit if isinstance(unit, dict) and isinstance(unit.get("code"), str) else None


def quantity(value: float, unit: dict[str, Any]) -> dict[str, Any]:
    return {"value": value, "unit": unit["code"], "system": unit.get("system", UCUM), "code": unit["code"]}


def _well_formed(key: str, value: Any) -> bool:
    if key == "valueBoolean":
        return isinstance(value, bool)
    if key == "valueDecimal":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if key == "valueInteger":
        return isinstance(value, int) and not isinstance(value, bool)
    if key == "valueDate":
        return (
            isinstance(value, str) and DATE.fullmatch(value) is not None and parse_instant(value) is not None
        )
    if key == "valueDateTime":
        return parse_instant(value) is not None
    if key == "valueCoding":
        return isinstance(value, dict) and isinstance(value.get("code"), str) and bool(value["code"])
    if key == "valueQuantity":
        number = value.get("value") if isinstance(value, dict) else None
        return isinstance(number, int | float) and not isinstance(number, bool)
    if key in {"valueReference", "valueAttachment"}:
        return isinstance(value, dict)
    return isinstance(value, str) and bool(value)


def _among_options(item: dict[str, Any], coding: dict[str, Any]) -> None:
    options = [
        option["valueCoding"]
        for option in item.get("answerOption") or ()
        if isinstance(option, dict) and isinstance(option.get("valueCoding"), dict)
    ]
    if options and not any(
        option.get("code") == coding.get("code") and option.get("system") == coding.get("system")
        for option in options
    ):
        raise AnswerError("the code is not one of the item's answer options")


def _in_unit(item: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    unit = item_unit(item)
    if unit is None:
        return given
    stated = given.get("code") or given.get("unit")
    if stated is not None and stated != unit["code"]:
        raise AnswerError(f"the quantity must be in '{unit['code']}'")
    return quantity(given["value"], unit)
