"""`/rules/data`: the integrator's contract of the rules in service (site additions and thresholds
included), as a page; `docs/integration.md` is the same contract for the bundled rules."""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse

from ..plans.contract import CodeList, Contract, HookContract, Row, build_contract
from ..plans.contract_text import INTRO, TITLE, anchor
from .rule_pages import STYLE
from .state import state

CODE_SPAN = re.compile(r"`([^`]+)`")
DATA_STYLE = (
    "main{max-width:84rem}table.data td:first-child,.rule-ids span{white-space:nowrap;overflow-wrap:normal}"
    "code{font-size:.85rem;overflow-wrap:anywhere}"
    "table.prefetch td:first-child{white-space:nowrap;overflow-wrap:normal}"
)


def _table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]], css: str = "data") -> str:
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _inline(text: str) -> str:
    """Escaped text with its `code` spans as <code>."""
    return CODE_SPAN.sub(r"<code>\1</code>", escape(text))


def _record(row: Row) -> str:
    if not row.valueset:
        return escape(row.record)
    return f'<a href="#{anchor(row.valueset)}">{escape(row.record)}</a>'


def _rule_ids(rule_ids: tuple[str, ...]) -> str:
    """Rule ids that wrap between ids, never inside one (PATH-CC-COMPLETE)."""
    return '<span class="rule-ids">' + ", ".join(f"<span>{escape(r)}</span>" for r in rule_ids) + "</span>"


def _hook(hook: HookContract) -> str:
    prefetch = _table(
        ("Key", "Template"),
        [
            (escape(key), f"<code>{escape(template)}</code>")
            for key, template in sorted(hook.prefetch.items())
        ],
        "prefetch",
    )
    records = _table(
        ("Resource", "Record", "Counted when", "Window", "Value", "Cards that depend on it"),
        [
            (
                escape(row.resource_type),
                _record(row),
                escape(row.counted),
                escape(row.window) or "—",
                escape(row.value) or "—",
                _rule_ids(row.cards),
            )
            for row in hook.records
        ],
    )
    drafts = ""
    if hook.drafts:
        drafts = "<h3>Draft orders that give cards</h3>" + _table(
            ("Draft order", "Cards"), [(_record(row), _rule_ids(row.cards)) for row in hook.drafts]
        )
    return (
        f'<section id="{escape(hook.hook)}"><h2>{escape(hook.hook)}</h2>'
        f"<h3>Prefetch keys</h3>{prefetch}<h3>Records read</h3>{records}{drafts}</section>"
    )


def _code_list(code_list: CodeList) -> str:
    rows = [(escape(c.system), f"<code>{escape(c.code)}</code>", escape(c.display)) for c in code_list.codes]
    excluded = [
        (escape(c.system), f"<code>{escape(c.code)}</code>", escape(c.display)) for c in code_list.excluded
    ]
    return (
        f'<details id="{anchor(code_list.name)}"><summary>{escape(code_list.title)} '
        f"({len(rows)})</summary><p><code>{escape(code_list.url)}</code></p>"
        f"{_table(('System', 'Code', 'Meaning'), rows, 'codes')}"
        f"{_text_terms(code_list)}"
        f"{'<p>Except:</p>' + _table(('System', 'Code', 'Meaning'), excluded, 'codes') if excluded else ''}"
        "</details>"
    )


def _text_terms(code_list: CodeList) -> str:
    if not code_list.text_terms:
        return ""
    terms = ", ".join(f"“{escape(term)}”" for term in code_list.text_terms)
    return f"<p>Also a record without these codes whose text contains: {terms}</p>"


def render(contract: Contract) -> str:
    nav = "".join(f'<li><a href="#{escape(h.hook)}">{escape(h.hook)}</a></li>' for h in contract.hooks)
    local = _table(
        ("Code", "Meaning", "Value", "Definition"),
        [
            (f"<code>{escape(c.code)}</code>", escape(c.display), escape(c.value), escape(c.definition))
            for c in contract.local_codes
        ],
    )
    body = [
        "<header>",
        '<p class="kicker">Clinical decision support: for EHR integrators</p>',
        f"<h1>{escape(TITLE)}</h1>",
        *(f"<p>{_inline(paragraph)}</p>" for paragraph in INTRO),
        f'<nav aria-label="On this page"><ul>{nav}<li><a href="#codes">Code lists</a></li>'
        '<li><a href="#local">Own codes</a></li></ul></nav>',
        "</header>",
        *(_hook(hook) for hook in contract.hooks),
        '<section id="codes"><h2>Code lists</h2>',
        *(_code_list(code_list) for code_list in contract.code_lists),
        "</section>",
        '<section id="local"><h2>This service\'s own codes</h2>',
        f"<p>System <code>{escape(contract.local_system)}</code>.</p>{local}</section>",
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(TITLE)}</title><style>{STYLE}{DATA_STYLE}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>"
    )


async def data_page(request: Request) -> HTMLResponse:
    return HTMLResponse(render(build_contract(state(request).rules.ruleset)))
