"""V2-31: the rule pages (`/rules/{plan}`) a card's source link opens, read as a clinician reads them, over
every bundled plan definition and over plans written to trip the page up (placeholders, a rule split over two
actions, `<script>` in every text)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from cds_service.plans.cards import PLACEHOLDER, fill_parameters, parameter_text
from cds_service.plans.loader import load_ruleset
from cds_service.plans.rulewalk import walk

from support.hooks import ROOT

PLANS = ROOT / "plandefinitions"
PLAN_FILES = {json.loads(path.read_text())["id"]: path.name for path in sorted(PLANS.glob("*.json"))}
# Words a clinician must not meet (RULES.md V2-26): the seed file keys, the disagreement ids D1-D13, the
# authors' markers, revision-2 change ids and the specification's file name.
INTERNAL = re.compile(
    r"\bseeds?\b|\bS00[0-4]\b|(?<!vitamin )\bD(?:1[0-3]|[1-9])\b(?![.+\d])|site option"
    r"|\[(?:DESIGN|EXT)\]|\bV2-\d+|RULES\.md",
    re.IGNORECASE,
)
INLINE = frozenset({"a", "strong", "b", "em", "i", "var", "cite", "span", "code", "small"})
URL = re.compile(r"https?://[^\s()<>]+[^\s()<>.,;:]")


class Page(HTMLParser):
    """The parts of a page the tests read: visible text overall and inside each element with an id, the
    links, and every tag used."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.by_id: dict[str, list[str]] = {}
        self.open: list[tuple[str, str | None]] = []
        self.links: list[str] = []
        self.tags: set[str] = set()
        self.in_style = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.add(tag)
        self.separate(tag)
        self.in_style = tag == "style"
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))
        if tag in {"meta", "br", "link", "img", "input"}:
            return
        self.open.append((tag, values.get("id")))
        if values.get("id"):
            self.by_id.setdefault(str(values["id"]), [])

    def separate(self, tag: str) -> None:
        """A block's edge is a space between words; inline tags join their text to what is around them."""
        if tag not in INLINE:
            self.handle_data(" ")

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False
        self.separate(tag)
        while self.open:
            if self.open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.in_style:
            return
        self.text.append(data)
        for _, ident in self.open:
            if ident:
                self.by_id[ident].append(data)

    def visible(self, ident: str | None = None) -> str:
        parts = self.text if ident is None else self.by_id[ident]
        return " ".join("".join(parts).split())


@pytest.fixture(scope="module")
def ruleset():
    return load_ruleset(PLANS)


def page(client, plan_id: str) -> Page:
    response = client.get(f"/rules/{plan_id}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return Page(response.text)


def resource(plan_id: str) -> dict[str, Any]:
    return json.loads((PLANS / PLAN_FILES[plan_id]).read_text())


def valueset(name: str) -> dict[str, Any]:
    return next(
        data
        for path in sorted((PLANS / "valuesets").glob("*.json"))
        if (data := json.loads(path.read_text())).get("name") == name
    )


def rule_ids(plan) -> list[str]:
    return list(dict.fromkeys(card.rule_id for card in plan.cards))


# -- every bundled plan ----------------------------------------------------------------------------------


@pytest.mark.parametrize("plan_id", PLAN_FILES)
def test_the_page_shows_no_placeholder_and_no_internal_vocabulary(client, plan_id: str):
    text = page(client, plan_id).visible()
    assert "{{" not in text and "}}" not in text
    found = sorted(
        {
            f"{m.group(0)!r} in …{text[max(m.start() - 60, 0) : m.end() + 40]}…"
            for m in INTERNAL.finditer(text)
        }
    )
    assert not found, f"internal vocabulary on /rules/{plan_id}:\n" + "\n".join(found)


@pytest.mark.parametrize("plan_id", PLAN_FILES)
def test_each_rule_is_shown_once_with_every_hook_it_fires_at(client, ruleset, plan_id: str):
    plan = next(p for p in ruleset.plans if p.id == plan_id)
    shown = page(client, plan_id)
    rules = [ident.removeprefix("rule-") for ident in shown.by_id if ident.startswith("rule-")]
    assert rules == rule_ids(plan)  # once each, in the plan's order
    for card in plan.cards:
        article = shown.visible(f"rule-{card.rule_id}")
        assert card.topic_display in article
        assert all(f"({hook})" in article for hook in card.hooks)


@pytest.mark.parametrize("plan_id", PLAN_FILES)
def test_draft_order_triggers_are_listed_with_their_codes_and_displays(client, ruleset, plan_id: str):
    plan = next(p for p in ruleset.plans if p.id == plan_id)
    shown = page(client, plan_id)
    for card in plan.cards:
        if card.per_draft is None:
            continue
        assert f"#codes-{card.per_draft}" in shown.links
        listed = shown.visible(f"codes-{card.per_draft}")
        for include in valueset(card.per_draft)["compose"]["include"]:
            for concept in include.get("concept", ()):
                assert concept["code"] in listed and " ".join(concept["display"].split()) in listed


@pytest.mark.parametrize("plan_id", PLAN_FILES)
def test_the_codes_a_rule_alone_looks_for_are_listed_under_it(client, ruleset, plan_id: str):
    """Red flags included: each rule links the value sets its own condition facts select from (facts every
    rule of the plan shares, such as "is the patient in scope", are the plan's context, not a trigger)."""
    plan = next(p for p in ruleset.plans if p.id == plan_id)
    shown = page(client, plan_id)
    named: dict[str, set[str]] = {}
    for card in plan.cards:
        names = {args[0] for rule in card.condition_rules for op, args in walk(rule) if op == "fact"}
        named.setdefault(card.rule_id, set()).update(names)
    for rule_id, facts in named.items():
        own = {f for f in facts if not any(f in other for r, other in named.items() if r != rule_id)}
        for fact in own:
            for operator, args in walk(ruleset.facts[fact].rule):
                if operator == "select" and len(args) > 1 and args[1] in ruleset.valuesets:
                    assert f"#codes-{args[1]}" in shown.links, f"{rule_id} does not list {args[1]}"
                    codes = shown.visible(f"codes-{args[1]}")
                    for include in valueset(args[1])["compose"]["include"]:
                        for concept in include.get("concept", ()):
                            assert concept["code"] in codes


@pytest.mark.parametrize("plan_id", PLAN_FILES)
def test_criteria_come_in_order_with_their_thresholds_filled_in_and_shown(client, ruleset, plan_id: str):
    plan = next(p for p in ruleset.plans if p.id == plan_id)
    shown = page(client, plan_id)
    if not plan.criteria:
        assert "criteria" not in shown.by_id
        return
    criteria = shown.visible("criteria")
    positions = [
        criteria.index(f"{c.code} {fill_parameters(c.label, ruleset.params)}") for c in plan.criteria
    ]
    assert positions == sorted(positions)
    thresholds = shown.visible("thresholds")
    for criterion in plan.criteria:
        for name in PLACEHOLDER.findall(criterion.label):
            assert parameter_text(name, ruleset.params[name]) in thresholds, name


@pytest.mark.parametrize("plan_id", PLAN_FILES)
def test_sources_are_cited_in_full_with_their_urls(client, plan_id: str):
    shown = page(client, plan_id)
    artifacts = resource(plan_id).get("relatedArtifact", [])
    assert artifacts, "a plan definition names its sources"
    sources = shown.visible("sources")
    for artifact in artifacts:
        assert (artifact.get("display") or artifact["citation"]) in sources
        if artifact.get("citation"):
            assert " ".join(artifact["citation"].split()) in sources
        for url in [artifact.get("url"), *URL.findall(artifact.get("citation", ""))]:
            if url:
                assert url in shown.links


def test_the_page_is_plain_html_readable_on_a_phone(client):
    response = client.get("/rules/red-flags")
    shown = Page(response.text)
    assert '<html lang="en">' in response.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in response.text
    assert "script" not in shown.tags  # works without JavaScript
    assert "@media (max-width:40rem)" in response.text  # one column at a phone's width


# -- what the page does with what authors write ----------------------------------------------------------


@pytest.fixture
def plans(tmp_path: Path) -> Path:
    folder = tmp_path / "plandefinitions"
    shutil.copytree(PLANS, folder)
    return folder


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def part(plan: dict[str, Any], name: str) -> dict[str, Any]:
    """A part (label, citation, ...) of the plan's first criterion."""
    criterion = next(e for e in plan["extension"] if e["url"].endswith("/criterion"))
    return next(p for p in criterion["extension"] if p["url"] == name)


def test_site_thresholds_are_the_values_shown(plans: Path, tmp_path: Path, client_factory):
    site = tmp_path / "site.json"
    parameter = {"name": "revision.minDaysSinceFusion", "valueInteger": 365}
    site.write_text(json.dumps({"resourceType": "Parameters", "parameter": [parameter]}))
    label = "At least {{revision.minDaysSinceFusion}} since the index fusion"
    edit(plans / PLAN_FILES["revision"], lambda plan: part(plan, "label").update(valueString=label))
    shown = page(client_factory(plandefinitions_dir=plans, parameters_file=site), "revision")
    assert "At least 12 months since the index fusion" in shown.visible("criteria")
    assert "12 months" in shown.visible("thresholds")


def test_card_templates_read_as_plain_words(plans: Path, client_factory):
    def change(plan: dict[str, Any]) -> None:
        action = plan["action"][0]
        action["title"] = "Elective criteria not met: {{unmet}}"
        action["description"] = "Findings count for {{redFlag.lookbackDays}}.\n\n{{checklist}}\n\n" + (
            "- first point\n- **second** point"
        )

    edit(plans / PLAN_FILES["red-flags"], change)
    response = client_factory(plandefinitions_dir=plans).get("/rules/red-flags")
    rule = Page(response.text).visible(
        f"rule-{rule_id(json.loads((plans / PLAN_FILES['red-flags']).read_text())['action'][0])}"
    )
    assert "Elective criteria not met: (the missing items)" in rule
    assert "Findings count for 2 weeks." in rule
    assert "(the checklist of the criteria below, each marked met, not met or not documented)" in rule
    assert "<li><strong>second</strong> point</li>" in response.text


def rule_id(action: dict[str, Any]) -> str:
    return str(action["code"][0]["coding"][0]["code"])


def test_a_rule_split_over_two_actions_is_shown_once_with_both_wordings(plans: Path, client_factory):
    """A rule with separate order-select and order-sign actions: one entry, both hooks, each wording."""

    def split(plan: dict[str, Any]) -> None:
        index, action = next(
            (i, a) for i, a in enumerate(plan["action"]) if "order-sign" in str(a["trigger"])
        )
        select, sign = json.loads(json.dumps(action)), json.loads(json.dumps(action))
        select["id"], sign["id"] = f"{action['id']}-A", f"{action['id']}-B"
        select["trigger"] = [{"type": "named-event", "name": "order-select"}]
        sign["trigger"] = [{"type": "named-event", "name": "order-sign"}]
        sign["title"] = "Signing: a second wording"
        plan["action"][index : index + 1] = [select, sign]

    edit(plans / PLAN_FILES["revision"], split)
    actions = json.loads((plans / PLAN_FILES["revision"]).read_text())["action"]
    split_rule = rule_id(next(a for a in actions if a["title"] == "Signing: a second wording"))
    shown = page(client_factory(plandefinitions_dir=plans), "revision")
    assert [i for i in shown.by_id if i == f"rule-{split_rule}"] == [f"rule-{split_rule}"]
    article = shown.visible(f"rule-{split_rule}")
    assert "(order-select)" in article and "(order-sign)" in article
    assert "At order-sign: Signing: a second wording" in article
    assert "At order-select:" in article


SCRIPT = "<script>alert(1)</script>"
TEXTS = (
    "Title",
    "Description",
    "Usage",
    "label",
    "citation",
    "Summary",
    "Detail",
    "Rule",
    "Source",
    "Citation",
)


def test_every_text_from_a_plan_is_escaped(plans: Path, client_factory):
    def poison(plan: dict[str, Any]) -> None:
        plan["title"] = f"Title {SCRIPT}"
        plan["description"] = f"Description {SCRIPT}"
        plan["usage"] = f"Usage {SCRIPT}"
        part(plan, "label")["valueString"] = f"label {SCRIPT}"
        part(plan, "citation")["valueString"] = f"citation {SCRIPT}"
        action = plan["action"][0]
        action["title"] = f"Summary {SCRIPT}"
        action["description"] = f"Detail **{SCRIPT}**"
        action["code"][0]["coding"][0]["display"] = f"Rule {SCRIPT}"
        plan["relatedArtifact"] = [
            {
                "type": "citation",
                "display": f"Source {SCRIPT}",
                "citation": f"Citation {SCRIPT} https://example.org/a?b=1&c=<i>",
                "url": 'https://example.org/"onmouseover="alert(1)',
            },
            {"type": "documentation", "display": "Not a web link", "url": "javascript:alert(1)"},
        ]

    edit(plans / PLAN_FILES["revision"], poison)
    edit(
        plans / "valuesets" / "RevisionOrders.json",
        lambda vs: vs["compose"]["include"][0]["concept"][0].update(display=f"Display {SCRIPT}"),
    )
    response = client_factory(plandefinitions_dir=plans).get("/rules/revision")
    assert response.status_code == 200
    shown = Page(response.text)
    assert "script" not in shown.tags and "<i>" not in response.text
    assert 'onmouseover="' not in response.text  # the quote in the URL does not end the attribute
    assert "javascript:" not in "".join(shown.links)
    text = shown.visible()
    for where in (*TEXTS, "Display"):
        assert f"{where} {SCRIPT}" in text, where
    assert "Not a web link" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
