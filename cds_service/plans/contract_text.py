"""The integrator's contract as Markdown: `docs/integration.md` is this text, and a test keeps it so."""

from __future__ import annotations

from collections.abc import Iterator

from .contract import CodeList, Contract, HookContract, Row

TITLE = "Data the rules read: the integrator's contract"
INTRO = (
    "Generated from the loaded rules by `cds-service rules data`; do not edit by hand (a test compares "
    "this file with the rules). The running service shows the same at `/rules/data`, with the site's "
    "own codes and thresholds, and as FHIR at `/fhir/Library/{id}/$data-requirements`.",
    "Send these records in `prefetch` under the keys below, or let the service fetch them from the EHR's "
    "FHIR server (it asks for exactly these searches). A record counts only if its code is in the code "
    "list and its status is one the table names; records with other codes are ignored, never an error. "
    "Local codes are this service's own CodeSystem (last section): record them with the post-fusion "
    "screen Questionnaire (`/fhir/Questionnaire`), or map your own codes onto a code list with a site "
    "overlay (docs/site-overlay.md).",
)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "—"


def table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> Iterator[str]:
    yield "| " + " | ".join(headers) + " |"
    yield "|" + "|".join("---" for _ in headers) + "|"
    for row in rows:
        yield "| " + " | ".join(cell(value) for value in row) + " |"
    yield ""


def record_row(row: Row) -> tuple[str, ...]:
    record = f"{row.record} ([codes](#{anchor(row.valueset)}))" if row.valueset else row.record
    return (row.resource_type, record, row.counted, row.window, row.value, ", ".join(row.cards))


def anchor(valueset: str) -> str:
    return f"codes-{valueset.lower()}"


def hook_section(hook: HookContract) -> Iterator[str]:
    yield f"## {hook.hook}"
    yield ""
    yield "Prefetch keys (the service's discovery document lists the same):"
    yield ""
    yield from table(
        ("Key", "Template"), [(key, f"`{template}`") for key, template in sorted(hook.prefetch.items())]
    )
    yield "Records read:"
    yield ""
    yield from table(
        ("Resource", "Record", "Counted when", "Window", "Value", "Cards that depend on it"),
        [record_row(row) for row in hook.records],
    )
    if hook.drafts:
        yield "Draft orders in `context.draftOrders` that give cards:"
        yield ""
        yield from table(
            ("Draft order", "Cards"),
            [
                (
                    f"{row.record} ([codes](#{anchor(row.valueset)}))" if row.valueset else row.record,
                    ", ".join(row.cards),
                )
                for row in hook.drafts
            ],
        )


def code_list_section(code_list: CodeList) -> Iterator[str]:
    yield f'### <a id="{anchor(code_list.name)}"></a>{code_list.title}'
    yield ""
    yield f"`{code_list.url}`"
    yield ""
    yield from table(("System", "Code", "Meaning"), [(c.system, c.code, c.display) for c in code_list.codes])
    if code_list.text_terms:
        yield "Also a record without these codes whose text contains: " + ", ".join(
            f"“{term}”" for term in code_list.text_terms
        )
        yield ""
    if code_list.excluded:
        yield "Except:"
        yield ""
        yield from table(
            ("System", "Code", "Meaning"), [(c.system, c.code, c.display) for c in code_list.excluded]
        )


def markdown(contract: Contract) -> str:
    lines = [f"# {TITLE}", ""]
    for paragraph in INTRO:
        lines += [paragraph, ""]
    for hook in contract.hooks:
        lines += list(hook_section(hook))
    lines += ["## Code lists", ""]
    for code_list in contract.code_lists:
        lines += list(code_list_section(code_list))
    lines += ["## This service's own codes", "", f"System `{contract.local_system}`.", ""]
    lines += list(
        table(
            ("Code", "Meaning", "Value", "Definition"),
            [(f"`{c.code}`", c.display, c.value, c.definition) for c in contract.local_codes],
        )
    )
    return "\n".join(lines).rstrip("\n") + "\n"
