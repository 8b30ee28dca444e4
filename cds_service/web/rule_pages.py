"""A readable page per plan definition: where a card's source link takes the clinician.

It says, from the loaded rules themselves (see `plan_outline`), which cards the plan can show and when, the
criteria in order with this site's thresholds, the codes that trigger the cards, and the full citations of
the sources. Plain HTML and CSS: readable on a phone, printable, no JavaScript; every text is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse

from ..errors import NotFound
from ..plans.canonical import LOCAL_CODES, SYSTEM_NAMES
from ..plans.cards import fill_parameters
from ..plans.model import Plan, RuleSet
from .plan_files import Citation, Code, CodeList, PlanFiles, plan_files
from .plan_outline import HOOK_WORDS, Rule, Threshold, bracketed, outline, pieces
from .state import state

INDICATOR_WORDS = {"info": "Information", "warning": "Warning", "critical": "Critical"}
PREVIEW_UP_TO = 4  # a rule names the codes of a list this short beside its title
FOLD_AFTER = 5  # a rule with more code lists folds them
OPEN_UP_TO = 12  # code lists this short are shown open; longer ones fold, so the page stays scannable
BOLD = re.compile(r"\*\*(.+?)\*\*")
URL = re.compile(r"https?://[^\s()<>]+[^\s()<>.,;:]")

STYLE = """
:root{color-scheme:light;--ink:#1b1f24;--muted:#50585f;--line:#d5d9de;--info:#005a8e;--warning:#8a4f00;
--critical:#b00020}
*{box-sizing:border-box}
body{margin:0;font:17px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;
color:var(--ink);background:#f6f7f9}
main{max-width:60rem;margin:0 auto;padding:1.5rem 1.25rem 3rem;background:#fff}
h1{font-size:1.75rem;line-height:1.25;margin:.25rem 0 .75rem}
h2{font-size:1.3rem;margin:2.25rem 0 .75rem;padding-top:.75rem;border-top:2px solid var(--line)}
h3{font-size:1.1rem;margin:0 0 .5rem;line-height:1.35}
a{color:#0b57a4}
.kicker{margin:0;color:var(--muted);font-size:.95rem}
.note{background:#fff8e6;border-left:4px solid #d89a00;padding:.6rem .9rem}
nav ul{list-style:none;padding:0;margin:1rem 0 0;display:flex;flex-wrap:wrap;gap:.4rem 1.25rem}
.rule{border:1px solid var(--line);border-left:6px solid var(--info);border-radius:6px;padding:1rem 1.1rem;
margin:0 0 1rem}
.rule.warning{border-left-color:#e08a00}.rule.critical{border-left-color:var(--critical)}
.badge{display:inline-block;font-size:.8rem;font-weight:600;padding:.05rem .5rem;border-radius:1rem;
vertical-align:.1rem;border:1px solid currentColor;white-space:nowrap}
.badge.info{color:var(--info)}.badge.warning{color:var(--warning)}.badge.critical{color:var(--critical)}
dl{margin:0;display:grid;grid-template-columns:9.5rem 1fr;gap:.35rem 1rem}
dt{font-weight:600;color:var(--muted)}dd{margin:0}
dd ul{margin:0;padding-left:1.1rem}
.card-text{border:1px solid var(--line);border-radius:4px;background:#fafbfc;padding:.6rem .8rem}
.card-text+.card-text{margin-top:.5rem}
.card-text .summary{font-weight:600;margin:0 0 .3rem}
.card-text p{margin:.3rem 0}
var{font-style:italic;color:var(--muted)}
.hooks{font-size:.9rem;color:var(--muted);margin:0 0 .2rem}
.rule-id{font-size:.85rem;color:var(--muted);margin:.6rem 0 0}
ol.criteria{list-style:none;padding:0}ol.criteria>li{margin:0 0 .8rem}
.basis,.applies{display:block;font-size:.92rem;color:var(--muted)}
table{border-collapse:collapse;width:100%;margin:.25rem 0 .5rem}
th,td{text-align:left;vertical-align:top;padding:.4rem .6rem;border-bottom:1px solid var(--line)}
th{font-size:.9rem;color:var(--muted)}
td.value{white-space:nowrap;font-weight:600}
table.codes{table-layout:fixed}table.codes th:first-child{width:13rem}td{overflow-wrap:anywhere}
.preview{color:var(--muted);font-size:.92rem}
.system{display:block;font-size:.8rem;color:var(--muted)}
details{border:1px solid var(--line);border-radius:6px;padding:.5rem .8rem;margin:0 0 .6rem}
summary{cursor:pointer;font-weight:600}
.sources li{margin:0 0 .8rem}.sources cite{font-style:normal;font-weight:600;display:block}
.reference{display:block;color:var(--muted);font-size:.95rem}
.sources a,.detail a{overflow-wrap:anywhere}
footer{margin-top:2.5rem;font-size:.9rem;color:var(--muted)}
@media (max-width:40rem){
body{font-size:16px}main{padding:1rem .9rem 2rem}
dl{grid-template-columns:1fr;gap:0}dd{margin:0 0 .6rem}
td.value{white-space:normal}table.codes th:first-child{width:38%}
}
@media print{body{background:#fff}main{max-width:none}details{break-inside:avoid}}
"""


def render_plan(plan: Plan, ruleset: RuleSet, files: PlanFiles) -> str:
    """The page, with criterion labels and card texts showing this site's thresholds."""
    shape = outline(plan, ruleset)
    sections = [
        ("rules", "Cards", _rules(shape.rules, ruleset, files)),
        ("criteria", "Criteria", _criteria(plan, ruleset)),
        ("thresholds", "Thresholds", _thresholds(shape.thresholds)),
        ("codes", "Codes", _codes(shape.code_lists, files)),
        ("sources", "Sources", _sources(files.citations.get(plan.id, ()))),
    ]
    present = [(anchor, name, html) for anchor, name, html in sections if html]
    nav = "".join(f'<li><a href="#{anchor}">{name}</a></li>' for anchor, name, _ in present)
    version = files.versions.get(plan.id, "")
    body = [
        "<header>",
        '<p class="kicker">Clinical decision support: what this plan checks</p>',
        f"<h1>{escape(plan.title)}</h1>",
        _paragraphs(plan.description, ruleset),
        f'<p class="note"><strong>Limits.</strong> {_inline(plan.usage, ruleset)}</p>' if plan.usage else "",
        f'<nav aria-label="On this page"><ul>{nav}</ul></nav>',
        "</header>",
        *(html for _, _, html in present),
        "<footer><p>Decision support only: it does not replace clinical judgement.",
        f" These rules: {escape(plan.title)}, {escape(version)}." if version else "",
        "</p></footer>",
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(plan.title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>"
    )


def _rules(rules: tuple[Rule, ...], ruleset: RuleSet, files: PlanFiles) -> str:
    articles = "".join(_rule(rule, ruleset, files) for rule in rules)
    return (
        '<section id="rules" aria-labelledby="rules-title">'
        '<h2 id="rules-title">Cards this plan can show</h2>'
        f"<p>Each card appears in the EHR when its conditions hold.</p>{articles}</section>"
    )


def _rule(rule: Rule, ruleset: RuleSet, files: PlanFiles) -> str:
    worst = max(rule.indicators, key=list(INDICATOR_WORDS).index)
    badges = " ".join(f'<span class="badge {i}">{INDICATOR_WORDS[i]}</span>' for i in rule.indicators)
    rows = [("Shown", "; ".join(f"{HOOK_WORDS[h]} ({h})" for h in rule.hooks))]
    if rule.drafts:
        rows.append(("For draft orders of", _list(_code_link(name, files) for name in rule.drafts)))
    by_hook = len({hooks for hooks, _ in rule.when}) > 1  # the conditions differ by hook, else by case
    for index, (hooks, conditions) in enumerate(rule.when):
        label = "When" if index == 0 or by_hook else "Or when"
        if by_hook:
            label += f" ({', '.join(HOOK_WORDS[h] for h in hooks)})"
        rows.append((label, _list(escape(condition) for condition in conditions)))
    if rule.looks_for:
        looks_for = _list(_code_link(name, files) for name in rule.looks_for)
        if len(rule.looks_for) > FOLD_AFTER:
            looks_for = f"<details><summary>{len(rule.looks_for)} code lists</summary>{looks_for}</details>"
        rows.append(("Looks for", looks_for))
    rows.append(
        (
            "The card says",
            "".join(_variant(v.hooks, v.summary, v.detail, rule, ruleset) for v in rule.variants),
        )
    )
    if rule.suggestions:
        rows.append(("It offers", _list(escape(label) for label in rule.suggestions)))
    if rule.links:
        rows.append(("Read more", _list(_link(url, label) for label, url in rule.links)))
    fields = "".join(f"<dt>{escape(name)}</dt><dd>{html}</dd>" for name, html in rows)
    anchor = escape(rule.id)
    return (
        f'<article class="rule {worst}" id="rule-{anchor}" aria-labelledby="title-{anchor}">'
        f'<h3 id="title-{anchor}">{escape(rule.title)} {badges}</h3><dl>{fields}</dl>'
        f'<p class="rule-id">Rule {anchor}</p></article>'
    )


def _variant(hooks: tuple[str, ...], summary: str, detail: str | None, rule: Rule, ruleset: RuleSet) -> str:
    shown_at = f'<p class="hooks">At {escape(", ".join(hooks))}:</p>' if len(rule.variants) > 1 else ""
    return (
        f'<div class="card-text">{shown_at}<p class="summary">{_inline(summary, ruleset)}</p>'
        f'<div class="detail">{_paragraphs(detail or "", ruleset)}</div></div>'
    )


def _criteria(plan: Plan, ruleset: RuleSet) -> str:
    if not plan.criteria:
        return ""
    items = []
    for criterion in plan.criteria:
        label = fill_parameters(criterion.label, ruleset.params)
        exempt = fill_parameters(criterion.not_required, ruleset.params)
        applies = f'<span class="applies">Not required when: {escape(exempt)}</span>' if exempt else ""
        basis = (
            f'<span class="basis">Basis: {escape(criterion.citation)}</span>' if criterion.citation else ""
        )
        items.append(f"<li><strong>{escape(criterion.code)}</strong> {escape(label)}{applies}{basis}</li>")
    return (
        '<section id="criteria" aria-labelledby="criteria-title"><h2 id="criteria-title">Criteria</h2>'
        "<p>Checked in this order; a card's checklist marks each as met, not met, not documented or not "
        f'required.</p><ol class="criteria">{"".join(items)}</ol></section>'
    )


def _thresholds(thresholds: tuple[Threshold, ...]) -> str:
    if not thresholds:
        return ""
    rows = "".join(
        f'<tr><td>{escape(t.meaning)}</td><td class="value">{escape(t.value)}</td></tr>' for t in thresholds
    )
    return (
        '<section id="thresholds" aria-labelledby="thresholds-title">'
        '<h2 id="thresholds-title">Thresholds in force</h2>'
        "<p>The values this service uses now; a site may set its own within safe limits.</p>"
        '<table><thead><tr><th scope="col">What</th><th scope="col">Value</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></section>"
    )


def _codes(names: tuple[str, ...], files: PlanFiles) -> str:
    lists = "".join(_code_list(name, files.code_lists[name]) for name in names if name in files.code_lists)
    if not lists:
        return ""
    return (
        '<section id="codes" aria-labelledby="codes-title">'
        '<h2 id="codes-title">Codes that trigger the cards</h2>'
        f"<p>A record or draft order with any of these codes counts.</p>{lists}</section>"
    )


def _code_list(name: str, codes: CodeList) -> str:
    rows = "".join(_code_row(code) for code in codes.include)
    excluded = "".join(_code_row(code) for code in codes.exclude)
    count = len(codes.include)
    table = (
        '<table class="codes"><thead><tr><th scope="col">Code</th><th scope="col">Meaning</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        if rows
        else ""
    )
    if excluded:
        table += f'<p>Except:</p><table class="codes"><tbody>{excluded}</tbody></table>'
    opened = " open" if count <= OPEN_UP_TO else ""
    return (
        f'<details id="codes-{escape(name)}"{opened}><summary>{escape(codes.title)} '
        f"({count} {'code' if count == 1 else 'codes'})</summary>{table}</details>"
    )


def _code_row(code: Code) -> str:
    system = SYSTEM_NAMES.get(code.system, code.system)
    meaning = code.display
    if code.below == "is-a":
        meaning = f"{code.code} and every code below it"
    elif code.below:
        meaning = f"every code below {code.code}"
    return (
        f'<tr><td class="code">{escape(code.code)}<span class="system">{escape(system)}</span></td>'
        f"<td>{escape(meaning)}</td></tr>"
    )


def _code_link(name: str, files: PlanFiles) -> str:
    """A link to a code list below, with its codes when they are few enough to read in passing."""
    codes = files.code_lists.get(name)
    if codes is None:
        return escape(name)
    listed = [code for code in (*codes.include, *codes.exclude) if code.system != LOCAL_CODES]
    preview = ""
    if listed and len(listed) <= PREVIEW_UP_TO and not codes.exclude:
        shown = ", ".join(f"{code.code}{'*' if code.below else ''}" for code in listed)
        preview = f' <span class="preview">({escape(shown)})</span>'
    return f'<a href="#codes-{escape(name)}">{escape(codes.title)}</a>{preview}'


def _sources(citations: tuple[Citation, ...]) -> str:
    if not citations:
        return ""
    items = []
    for citation in citations:
        text = f'<span class="reference">{_linked(citation.text)}</span>' if citation.text else ""
        link = (
            f" {_link(citation.url, citation.url)}"
            if citation.url and citation.url not in citation.text
            else ""
        )
        items.append(f"<li><cite>{escape(citation.title)}</cite>{text}{link}</li>")
    return (
        '<section id="sources" aria-labelledby="sources-title"><h2 id="sources-title">Sources</h2>'
        f'<ol class="sources">{"".join(items)}</ol></section>'
    )


def _link(url: str, label: str) -> str:
    """A link, only to a web address: a `javascript:` or `data:` URL in a plan stays inert text."""
    if not url.startswith(("https://", "http://")):
        return escape(label)
    return f'<a href="{escape(url)}">{escape(label)}</a>'


def _linked(text: str) -> str:
    """Escaped text whose URLs are links."""
    parts, last = [], 0
    for match in URL.finditer(text):
        url = match.group(0)
        parts += [escape(text[last : match.start()]), _link(url, url)]
        last = match.end()
    return "".join([*parts, escape(text[last:])])


def _inline(template: str, ruleset: RuleSet) -> str:
    """One line of card text: escaped, per-patient parts as <var>, **bold** kept."""
    parts = pieces(template, ruleset)
    html = "".join(
        f"<var>{escape(text)}</var>" if piece.slot else escape(text)
        for piece, text in zip(parts, bracketed(parts), strict=True)
    )
    return BOLD.sub(r"<strong>\1</strong>", html)


def _paragraphs(text: str, ruleset: RuleSet) -> str:
    """Card detail markdown, the little of it authors use: paragraphs, "- " lists and **bold**."""
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if lines and all(line.startswith(("- ", "* ")) for line in lines):
            blocks.append(_list(_inline(line[2:], ruleset) for line in lines))
        elif lines:
            blocks.append(f"<p>{'<br>'.join(_inline(line, ruleset) for line in lines)}</p>")
    return "".join(blocks)


def _list(items: Iterable[str]) -> str:
    return f"<ul>{''.join(f'<li>{item}</li>' for item in items)}</ul>"


async def plan_page(request: Request) -> HTMLResponse:
    plan_id = request.path_params["plan_id"]
    registry = state(request).rules
    ruleset = registry.ruleset
    plan = next((p for p in ruleset.plans if p.id == plan_id), None)
    if plan is None:
        raise NotFound.single(f"no plan definition with id '{plan_id}'", "url", "not-found")
    return HTMLResponse(render_plan(plan, ruleset, plan_files(ruleset.artifacts)))
