"""Screenshots, in a real browser, of what clinicians read: every rule page, and one card of each rule as the
CDS Hooks sandbox renders it; and the integrator's page of what the rules read (`/rules/data`).

    .venv/bin/python scripts/screenshots.py [--out build/screenshots] [--plan ID ...] [--rule ID ...]

Starts the service with the bundled rules and an embedded SQLite store on a free loopback port (its clock at
the synthetic patients' T0), makes every hook call of the synthetic patients (fixtures/patients) with complete
prefetch, keeps the first card of each rule, and has Debian's Chromium (`/usr/bin/chromium`, or
CDS_CHROMIUM), driven by playwright-core (`scripts/browser/`), save PNGs: `pages/{plan}-{width}.png` at 1280
and 390 px wide, and `cards/{rule}.png`. The npm packages are installed from the lockfile on first use and
again only when it changes, so a second run needs no network. Prints what it wrote and the rules no
synthetic call shows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
BROWSER = ROOT / "scripts" / "browser"
CHROMIUM = os.environ.get("CDS_CHROMIUM", "/usr/bin/chromium")
PAGE_WIDTHS = (1280, 390)  # a desktop screen, a phone
CARD_WIDTH = 720  # about the sandbox's card column
START_TIMEOUT_S = 30.0


def install_browser_packages() -> None:
    """`npm ci` from the lockfile, only when node_modules is missing or the lockfile changed."""
    lock = BROWSER / "package-lock.json"
    stamp = BROWSER / "node_modules" / ".installed"
    wanted = hashlib.sha256(lock.read_bytes() + (BROWSER / "package.json").read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == wanted:
        return
    print("screenshots: installing scripts/browser from its lockfile", file=sys.stderr)
    npm = shutil.which("npm") or sys.exit("screenshots: npm (Node 20 or newer) is needed")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BROWSER, check=True)
    stamp.write_text(wanted)


@contextmanager
def running_service(clock: list[datetime], data: Path) -> Iterator[str]:
    """The service on a free loopback port for as long as the block lasts; yields its base URL."""
    from cds_service.config import Settings
    from cds_service.web.app import create_app

    settings = Settings(
        auth="off",
        reload=False,
        database_url=f"sqlite+aiosqlite:///{data / 'feedback.sqlite3'}",
        quiet_cards=False,  # every call shows its cards, as if each were the first
        log_level="WARNING",
    )
    app = create_app(settings, clock=lambda: clock[0])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sys.exit("screenshots: the service did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)
        sock.close()


def prefetch(resources: list[dict[str, Any]], templates: dict[str, str], patient_id: str) -> dict[str, Any]:
    """Each prefetch key answered from the patient's record: a read gives the resource, a search every
    resource of its type (the service applies its own value sets and hygiene)."""
    answers: dict[str, Any] = {}
    for key, template in templates.items():
        path = template.replace("{{context.patientId}}", patient_id).partition("?")[0]
        kind, _, ident = path.partition("/")
        if ident:
            answers[key] = next(
                (r for r in resources if r["resourceType"] == kind and r["id"] == ident), None
            )
            continue
        matches = [r for r in resources if r["resourceType"] == kind]
        answers[key] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in matches],
        }
    return answers


def first_cards(base: str, clock: list[datetime], wanted: set[str] | None) -> dict[str, dict[str, Any]]:
    """Rule id -> the first card of that rule the synthetic patients' calls bring, and the hook and case."""
    from cds_service.cli.cases import load_cases, request_for

    with httpx.Client(base_url=base, timeout=30.0) as client:
        services = client.get("/cds-services").json()["services"]
        by_hook = {service["hook"]: service for service in services}
        found: dict[str, dict[str, Any]] = {}
        for case in load_cases():
            clock[0] = case.t0
            for call in case.calls:
                service = by_hook[call["hook"]]
                answers = prefetch(case.resources, service.get("prefetch", {}), case.id)
                body = request_for(case, call, "https://fhir.invalid/r4", answers)
                response = client.post(f"/cds-services/{service['id']}", json=body)
                response.raise_for_status()
                for card in response.json()["cards"]:
                    rule = card["source"]["topic"]["code"]
                    if (wanted is None or rule in wanted) and rule not in found:
                        found[rule] = {"card": card, "hook": call["hook"], "case": case.id}
                if wanted is not None and wanted <= found.keys():
                    return found
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "screenshots")
    parser.add_argument("--plan", action="append", help="only this plan's page (repeatable)")
    parser.add_argument("--rule", action="append", help="only this rule's card (repeatable)")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).is_file():
        sys.exit(f"screenshots: no Chromium at {CHROMIUM} (apt-get install chromium, or set CDS_CHROMIUM)")
    install_browser_packages()
    from cds_service.config import bundled
    from cds_service.plans.loader import load_ruleset

    ruleset = load_ruleset(bundled("plandefinitions"))
    # every plan's page, and /rules/data: the integrator's page
    plan_ids = args.plan or [*(plan.id for plan in ruleset.plans), "data"]
    all_rules = {card.rule_id for plan in ruleset.plans for card in plan.cards}
    wanted = set(args.rule) if args.rule else None
    out = args.out.resolve()
    for folder in (
        out / "pages",
        out / "cards",
    ):  # the folder holds this run's shots, none from an earlier one
        shutil.rmtree(folder, ignore_errors=True)
    clock = [datetime.now().astimezone()]
    with (
        tempfile.TemporaryDirectory(prefix="cds-screenshots-") as data,
        running_service(clock, Path(data)) as base,
    ):
        cards = first_cards(base, clock, wanted)
        job = {
            "chromium": CHROMIUM,
            "pages": [
                {
                    "url": f"{base}/rules/{plan}",
                    "file": str(out / "pages" / f"{plan}-{width}.png"),
                    "width": width,
                }
                for plan in plan_ids
                for width in PAGE_WIDTHS
            ],
            "cards": [
                {**found, "rule": rule, "file": str(out / "cards" / f"{rule}.png"), "width": CARD_WIDTH}
                for rule, found in sorted(cards.items())
            ],
        }
        job_file = Path(data) / "job.json"
        job_file.write_text(json.dumps(job))
        subprocess.run(["node", str(BROWSER / "shoot.mjs"), str(job_file)], check=True)
    unseen = sorted((wanted or all_rules) - cards.keys())
    if unseen:
        print(f"screenshots: no synthetic call shows a card of {', '.join(unseen)}", file=sys.stderr)
    return 1 if wanted and unseen else 0


if __name__ == "__main__":
    sys.exit(main())
