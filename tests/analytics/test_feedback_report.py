"""`cds-service feedback-report`: rates per rule and override reasons from cards and feedback that went
through the real app, on SQLite and PostgreSQL; csv, json and a chart; and it never changes the database or
prints a user comment."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from matplotlib.image import imread
from starlette.testclient import TestClient

from cds_service.analytics import Period, Reason, Report, RuleStats, write_chart
from cds_service.cli import main
from cds_service.store import Database, alembic_config, issued_cards
from cds_service.web.app import create_app

from support.hooks import SERVICES, T0, hook_request

LATER = T0 + timedelta(days=10)  # the second batch of calls: 2026-11-11
COMMENT = "Mrs Jane Roe, born 1961-04-02, prefers the outside MRI"  # must never be printed
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Scenario:
    """What went through the app: every card issued, and every feedback item posted."""

    url: str
    issued: dict[str, tuple[str, str, datetime]] = field(default_factory=dict)  # uuid -> rule, service, at
    posted: list[tuple[str, str, dict]] = field(default_factory=list)  # service, card uuid, item

    def expected(
        self, since: date | None = None, until: date | None = None, service: str | None = None
    ) -> tuple[dict[str, dict[str, int | None]], dict[str, Counter]]:
        """Per rule: the counts the report must show, and Counter((code, display)) of override reasons. A card
        counts once, with its latest item by outcomeTimestamp; all its items count as submissions."""

        def in_period(moment: datetime) -> bool:
            return (since is None or moment.date() >= since) and (until is None or moment.date() <= until)

        def when(item: dict) -> datetime:
            return datetime.fromisoformat(item["outcomeTimestamp"])

        cohort = {
            uuid: rule
            for uuid, (rule, issuer, at) in self.issued.items()
            if in_period(at) and service in (None, issuer)
        }
        rows: dict[str, dict[str, int | None]] = {}
        for rule in cohort.values():
            rows.setdefault(rule, dict.fromkeys(("issued", "accepted", "overridden", "submissions"), 0))
            rows[rule]["issued"] += 1
        cards: dict[tuple[str, str], list[dict]] = {}
        for poster, uuid, item in self.posted:
            cards.setdefault((poster, uuid), []).append(item)
        reasons: dict[str, Counter] = {}
        for (poster, uuid), items in cards.items():
            latest = max(reversed(items), key=when)  # the last posted of equal timestamps
            if uuid in cohort:
                rule = cohort[uuid]
            elif uuid not in self.issued and service in (None, poster) and in_period(when(latest)):
                rule = "unattributed"
                rows.setdefault(rule, {"issued": None, "accepted": 0, "overridden": 0, "submissions": 0})
            else:
                continue
            rows[rule][latest["outcome"]] += 1
            rows[rule]["submissions"] += len(items)
            if latest["outcome"] == "overridden":
                coding = latest["overrideReason"].get("reason") or {}
                reasons.setdefault(rule, Counter())[coding.get("code"), coding.get("display")] += 1
        for row in rows.values():
            row["feedback"] = row["accepted"] + row["overridden"]
        return rows, reasons


def _cards(client: TestClient, hook: str) -> list[dict]:
    response = client.post(f"/cds-services/{SERVICES[hook]}", json=hook_request(hook))
    assert response.status_code == 200, response.text
    client.portal.call(client.app_state["cds"].cards.flush)  # what the write-behind task does within 0.5 s
    return response.json()["cards"]


@pytest.fixture
def app(settings_factory, database_url: str) -> Iterator[tuple[TestClient, list[datetime]]]:
    """The real app on `database_url`, with a clock the test moves (cards are recorded at its time)."""
    now = [T0]
    with TestClient(create_app(settings_factory(database_url=database_url), clock=lambda: now[0])) as client:
        yield client, now


@pytest.fixture
def scenario(app, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Scenario:
    client, now = app
    # the never-issued card below need not wait for other workers' cards (tested in web/test_feedback.py)
    monkeypatch.setattr(issued_cards, "LATE_CARD_WAIT_S", 0)
    scenario = Scenario(database_url)
    by_rule: dict[str, list[dict]] = {}
    for moment, hooks in (
        (T0, ["order-sign", "order-sign", "patient-view", "order-select"]),
        (LATER, ["order-sign", "patient-view"]),
    ):
        now[0] = moment
        for hook in hooks:
            for card in _cards(client, hook):
                rule = card["source"]["topic"]["code"]
                scenario.issued[card["uuid"]] = (rule, SERVICES[hook], moment)
                by_rule.setdefault(rule, []).append(card)

    def stamp(moment: datetime) -> str:
        return (moment + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")

    def accept(card: dict, at: datetime) -> dict:
        suggestion = card["suggestions"][0]["uuid"]
        return {
            "card": card["uuid"],
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": suggestion}],
            "outcomeTimestamp": stamp(at),
        }

    def override(uuid: str, at: datetime, reason: dict | None, comment: str | None = None) -> dict:
        why = {k: v for k, v in (("reason", reason), ("userComment", comment)) if v}
        return {"card": uuid, "outcome": "overridden", "overrideReason": why, "outcomeTimestamp": stamp(at)}

    first, second, third = by_rule["REV-NOT-MET"]  # two issued at T0, one LATER
    urgent, elsewhere = first["overrideReasons"][:2]
    path_first, path_later = by_rule["PATH-CC-INCOMPLETE"]
    order_sign, patient_view = SERVICES["order-sign"], SERVICES["patient-view"]
    items = [
        (order_sign, override(first["uuid"], T0, urgent, COMMENT)),
        (order_sign, accept(first, LATER)),  # the clinician changed their mind after the period
        (order_sign, override(second["uuid"], T0, elsewhere)),
        (order_sign, accept(third, LATER)),
        (patient_view, accept(path_first, T0)),
        (patient_view, override(path_later["uuid"], LATER, None, COMMENT)),  # a comment, no coded reason
        (patient_view, override(by_rule["RISK-SMOKE"][0]["uuid"], T0, None, "not now")),  # it offers none
        (order_sign, override("5b0c7f5e-0000-4000-8000-00000000dead", T0, elsewhere)),  # never issued
    ]
    for service, item in items:
        response = client.post(f"/cds-services/{service}/feedback", json={"feedback": [item]})
        assert response.json() == {"received": 1, "stored": 1}, response.text
        scenario.posted.append((service, item["card"], item))
    monkeypatch.setenv("CDS_DATABASE_URL", database_url)
    return scenario


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["feedback-report", *args])
    out, err = capsys.readouterr()
    return status, out, err


def percent(part: int, whole: int | None) -> str:
    return f"{100 * part / whole:.1f}" if whole else "-"


def table(text: str) -> dict[str, list[str]]:
    """The per-rule rows of the text output, by rule."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("rule "))
    rows = lines[start + 1 : lines.index("", start)]
    return {row.split()[0]: row.split()[1:] for row in rows}


def reasons_section(text: str) -> dict[str, list[tuple[int, str, str]]]:
    """The override reasons of the text output: rule -> [(count, share %, label)]."""
    lines = text.splitlines()
    sections: dict[str, list[tuple[int, str, str]]] = {}
    for line in lines[lines.index("Override reasons") + 1 :]:
        if line and not line.startswith(" "):
            rule = line
            sections[rule] = []
        elif line:
            count, share, label = line.split(maxsplit=2)
            sections[rule].append((int(count), share, label))
    return sections


def expected_row(row: dict[str, int | None]) -> list[str]:
    """The text table's cells for one expected row."""
    issued, feedback = row["issued"], row["feedback"]
    return [
        "-" if issued is None else str(issued),
        str(feedback),
        str(row["accepted"]),
        str(row["overridden"]),
        str(row["submissions"]),
        percent(row["accepted"], feedback),
        percent(row["overridden"], feedback),
        percent(feedback, issued),
    ]


def test_text_report_counts_every_rule(scenario: Scenario, capsys) -> None:
    status, out, err = report(capsys, "--no-chart")
    assert status == 0, err
    rows, _ = scenario.expected()
    assert set(rows) >= {"REV-NOT-MET", "PATH-CC-INCOMPLETE", "RISK-SMOKE", "HW-MET", "unattributed"}
    assert table(out) == {rule: expected_row(row) for rule, row in rows.items()}
    # the scenario as written, as a cross-check: 3 cards, the first overridden and then accepted
    assert table(out)["REV-NOT-MET"][:5] == ["3", "3", "2", "1", "4"]
    assert list(table(out))[-1] == "unattributed"


def test_override_reasons_per_rule_with_code_display_and_share(scenario: Scenario, capsys) -> None:
    status, out, _ = report(capsys, "--no-chart")
    assert status == 0
    rows, reasons = scenario.expected()
    sections = reasons_section(out)
    assert set(sections) == set(reasons)
    for rule, counter in reasons.items():
        expected = {
            (
                n,
                f"{percent(n, rows[rule]['overridden'])}%",
                f"{code}  {display}" if code else "(no coded reason)",
            )
            for (code, display), n in counter.items()
        }
        assert set(sections[rule]) == expected
        assert [n for n, _, _ in sections[rule]] == sorted((n for n, _, _ in sections[rule]), reverse=True)
    assert "(no coded reason)" in {label for _, _, label in sections["PATH-CC-INCOMPLETE"]}


def test_csv_and_json_carry_the_same_numbers(scenario: Scenario, capsys) -> None:
    rows, reasons = scenario.expected()
    status, out, _ = report(capsys, "--no-chart", "--format", "json")
    assert status == 0
    document = json.loads(out)
    by_rule = {entry["rule"]: entry for entry in document["rules"]}
    assert set(by_rule) == set(rows)
    for rule, row in rows.items():
        entry = by_rule[rule]
        assert {key: entry[key] for key in row} == row
        feedback = row["feedback"]
        assert entry["acceptance_rate"] == (pytest.approx(row["accepted"] / feedback) if feedback else None)
        assert entry["override_rate"] == (pytest.approx(row["overridden"] / feedback) if feedback else None)
        issued = row["issued"]
        assert entry["response_rate"] == (pytest.approx(feedback / issued) if issued else None)
        got = Counter({(r["reason_code"], r["reason_display"]): r["count"] for r in entry["reasons"]})
        assert got == reasons.get(rule, Counter())

    status, out, _ = report(capsys, "--no-chart", "--format", "csv")
    assert status == 0
    rules_block, reasons_block = out.split("\n\n")
    csv_rows = list(csv.DictReader(io.StringIO(rules_block)))
    assert [r["rule"] for r in csv_rows] == [e["rule"] for e in document["rules"]]
    for line in csv_rows:
        entry = by_rule[line["rule"]]
        assert dict(line) == {k: "" if entry[k] is None else str(entry[k]) for k in line}
    csv_reasons = list(csv.DictReader(io.StringIO(reasons_block)))
    assert sorted((r["rule"], r["reason_code"], int(r["count"])) for r in csv_reasons) == sorted(
        (rule, code or "", n) for rule, counter in reasons.items() for (code, _), n in counter.items()
    )


def test_period_selects_cards_by_issue_day_with_all_their_feedback(scenario: Scenario, capsys) -> None:
    for args, since, until in (
        (["--since", str(LATER.date())], LATER.date(), None),
        (["--until", str(T0.date())], None, T0.date()),
        (["--since", "2026-11-02", "--until", "2026-11-11"], date(2026, 11, 2), date(2026, 11, 11)),
    ):
        status, out, err = report(capsys, "--no-chart", *args)
        assert status == 0, err
        rows, _ = scenario.expected(since, until)
        assert rows != scenario.expected()[0]  # the period really leaves something out
        assert table(out) == {rule: expected_row(row) for rule, row in rows.items()}, args
    status, out, _ = report(capsys, "--no-chart", "--until", str(T0.date()))
    assert table(out)["REV-NOT-MET"][:5] == ["2", "2", "1", "1", "3"]  # the acceptance that came LATER counts
    status, out, _ = report(capsys, "--no-chart", "--since", str(LATER.date()))
    assert "unattributed" not in table(out)  # its outcome was at T0


@pytest.mark.parametrize(
    ("hook", "rules"),
    [
        ("order-sign", {"REV-NOT-MET", "unattributed"}),  # the unknown card was posted here
        ("patient-view", {"PATH-CC-INCOMPLETE", "RISK-SMOKE", "RISK-DEP"}),
    ],
)
def test_service_option(scenario: Scenario, capsys, hook: str, rules: set[str]) -> None:
    status, out, _ = report(capsys, "--no-chart", "--service", SERVICES[hook])
    assert status == 0
    rows, _ = scenario.expected(service=SERVICES[hook])
    assert set(rows) == rules
    assert table(out) == {rule: expected_row(row) for rule, row in rows.items()}


def test_png_chart(scenario: Scenario, capsys, tmp_path: Path) -> None:
    chart = tmp_path / "out" / "rates.png"
    chart.parent.mkdir()
    status, _, err = report(capsys, "--chart", str(chart))
    assert status == 0
    assert f"chart: {chart}" in err
    assert chart.read_bytes().startswith(PNG_MAGIC)
    height, width, channels = imread(chart).shape
    assert width >= 1000 and height >= 600 and channels in (3, 4)


def svg_text(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return ["".join(element.itertext()) for element in root.iter() if element.tag.endswith("}text")]


def test_svg_chart_is_the_default_and_names_every_rule(
    scenario: Scenario, capsys, tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    status, _, _ = report(capsys)
    assert status == 0
    texts = svg_text(tmp_path / "feedback-report.svg")
    rows, reasons = scenario.expected()
    assert set(rows) <= set(texts)
    coded = Counter({key: n for key, n in sum(reasons.values(), Counter()).items() if key[0]})
    (_, top), count = coded.most_common(1)[0]
    assert count > 1 and top in texts  # the top reasons panel, by display


def test_user_comments_never_appear(scenario: Scenario, capsys, tmp_path: Path) -> None:
    assert sum(COMMENT in json.dumps(item) for _, _, item in scenario.posted) == 2  # it is in the store
    outputs = []
    for fmt, chart in (("text", "c.svg"), ("csv", "c.png"), ("json", "c2.svg")):
        status, out, err = report(capsys, "--format", fmt, "--chart", str(tmp_path / chart))
        assert status == 0
        outputs += [out, err]
    assert not any(COMMENT in output for output in outputs)
    for chart in ("c.svg", "c.png", "c2.svg"):
        assert COMMENT.encode() not in (tmp_path / chart).read_bytes()
    assert not any(part in " ".join(outputs) for part in ("Jane Roe", "1961-04-02"))


def test_no_feedback_in_the_period(scenario: Scenario, capsys, tmp_path: Path) -> None:
    chart = tmp_path / "empty.svg"
    status, out, _ = report(capsys, "--since", "2027-01-01", "--chart", str(chart))
    assert status == 0
    assert "no cards issued and no feedback in this period" in out
    assert "no feedback in this period" in svg_text(chart)
    status, out, _ = report(capsys, "--format", "json", "--no-chart", "--since", "2027-01-01")
    assert json.loads(out)["rules"] == []


def test_cards_without_feedback(app, database_url: str, capsys, monkeypatch, tmp_path: Path) -> None:
    client, _ = app
    cards = _cards(client, "order-sign")
    monkeypatch.setenv("CDS_DATABASE_URL", database_url)
    status, out, _ = report(capsys, "--chart", str(tmp_path / "c.png"))
    assert status == 0
    rows = table(out)
    assert Counter(card["source"]["topic"]["code"] for card in cards) == {
        r: int(v[0]) for r, v in rows.items()
    }
    assert all(v[1:] == ["0", "0", "0", "0", "-", "-", "0.0"] for v in rows.values())
    assert "no feedback in this period" in out
    assert imread(tmp_path / "c.png").shape[0] > 0


def _migrate_to(url: str, revision: str) -> None:
    async def run() -> None:
        database = Database(url)
        async with database.engine.begin() as connection:

            def upgrade(sync) -> None:
                config = alembic_config()
                config.attributes["connection"] = sync
                command.upgrade(config, revision)

            await connection.run_sync(upgrade)
        await database.close()

    asyncio.run(run())


async def _revision(url: str) -> str | None:
    database = Database(url)
    try:
        return await database.revision()
    finally:
        await database.close()


@pytest.mark.parametrize("schema", ["empty", "behind"])
def test_refuses_a_schema_not_at_head_and_leaves_it_alone(database_url, schema, capsys, monkeypatch) -> None:
    if database_url.startswith("sqlite"):
        Path(database_url.split("///", 1)[1]).touch()
    if schema == "behind":
        _migrate_to(database_url, "0001")
    monkeypatch.setenv("CDS_DATABASE_URL", database_url)
    status, out, err = report(capsys, "--no-chart")
    assert status == 1
    assert out == ""
    current = "none" if schema == "empty" else "0001"
    assert f"the database schema is at revision {current}" in err
    assert "a report never changes the database" in err
    assert asyncio.run(_revision(database_url)) == (None if schema == "empty" else "0001")


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path, capsys, monkeypatch) -> None:
    path = tmp_path / "nowhere" / "feedback.sqlite3"
    monkeypatch.setenv("CDS_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    status, _, err = report(capsys, "--no-chart")
    assert status == 1
    assert f"no database file at {path}" in err
    assert not path.parent.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--chart", "rates.pdf"], "must end in .png or .svg"),
        (["--since", "yesterday"], "--since: expected an ISO date"),
        (["--since", "2026-11-02", "--until", "2026-11-01"], "is after --until"),
    ],
)
def test_bad_options_are_refused_before_reading(args, message, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CDS_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'absent.sqlite3'}")
    status, out, err = report(capsys, *args)
    assert (status, out) == (2, "")
    assert message in err
    assert list(tmp_path.iterdir()) == []


def _synthetic(rules: int) -> Report:
    reason = Reason(
        "http://example.org/reasons", "other", "Another reason with a rather long display text", 3, 1
    )
    stats = [
        RuleStats(
            f"RULE-{n:02d}-SOMETHING",
            issued=10 * n,
            accepted=n,
            overridden=n % 4,
            reasons=(reason,) if n % 4 else (),
        )
        for n in range(rules)
    ]
    return Report(Period(), None, tuple(stats))


@pytest.mark.parametrize("rules", [1, 30])
def test_chart_stays_readable_from_one_rule_to_thirty(rules: int, tmp_path: Path) -> None:
    report_ = _synthetic(rules)
    write_chart(report_, tmp_path / "c.svg")
    write_chart(report_, tmp_path / "c.png")
    texts = svg_text(tmp_path / "c.svg")
    assert {rule.rule for rule in report_.rules} <= set(texts)
    height, _, _ = imread(tmp_path / "c.png").shape
    assert height >= 0.3 * 150 * rules  # rows get room as rules are added, not squeezed


def test_a_card_counts_once_with_its_latest_outcome(app, database_url: str, capsys, monkeypatch) -> None:
    """#17 (11): one card accepted twice and overridden twice read 'issued 1, feedback 4, 50%'. Each card has
    one outcome, its latest by outcomeTimestamp (in whatever order the submissions arrive); every submission
    is kept and counted apart."""
    client, _ = app
    (card,) = (c for c in _cards(client, "order-sign") if c["source"]["topic"]["code"] == "REV-NOT-MET")
    first, second = card["suggestions"][:2]
    early, late = card["overrideReasons"][:2]

    def item(minute: int, outcome: str, **details) -> dict:
        at = f"2026-11-01T12:{minute:02d}:00Z"
        return {"card": card["uuid"], "outcome": outcome, "outcomeTimestamp": at, **details}

    arrivals = [
        item(40, "overridden", overrideReason={"reason": late}),  # the last action, arriving first
        item(10, "accepted", acceptedSuggestions=[{"id": first["uuid"]}]),
        item(20, "accepted", acceptedSuggestions=[{"id": second["uuid"]}]),
        item(30, "overridden", overrideReason={"reason": early}),
    ]
    for feedback in arrivals:
        response = client.post(
            f"/cds-services/{SERVICES['order-sign']}/feedback", json={"feedback": [feedback]}
        )
        assert response.json() == {"received": 1, "stored": 1}, response.text
    monkeypatch.setenv("CDS_DATABASE_URL", database_url)
    status, out, err = report(capsys, "--no-chart", "--format", "json")
    assert status == 0, err
    (rule,) = (entry for entry in json.loads(out)["rules"] if entry["rule"] == "REV-NOT-MET")
    counts = {k: rule[k] for k in ("issued", "feedback", "accepted", "overridden", "acceptance_rate")}
    assert counts == {"issued": 1, "feedback": 1, "accepted": 0, "overridden": 1, "acceptance_rate": 0.0}
    assert rule["submissions"] == 4
    assert (rule["override_rate"], rule["response_rate"]) == (1.0, 1.0)
    assert [(r["reason_code"], r["count"]) for r in rule["reasons"]] == [(late["code"], 1)]
