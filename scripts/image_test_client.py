"""The calls scripts/image-test.sh makes inside the service's container (standard library only: the image
has no curl), printing one line.

  feedback PORT  < hook-request.json   call the hook's service, post `overridden` feedback on the first card;
                                       prints {"service", "card", "rule"} as JSON
  report LINE                          `cds-service feedback-report --format json`: that card's rule has the
                                       card issued and its feedback counted (LINE: what `feedback` printed)
"""

import json
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime


def call(port: str, path: str, body: object = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def feedback(port: str) -> str:
    hook = json.load(sys.stdin)
    services = call(port, "/cds-services")["services"]
    service = next(s["id"] for s in services if s["hook"] == hook["hook"])
    cards = call(port, f"/cds-services/{service}", hook)["cards"]
    if not cards:
        sys.exit(f"{service} answered no cards")
    card = cards[0]
    item = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": datetime.now(UTC).isoformat(),
    }
    answer = call(port, f"/cds-services/{service}/feedback", {"feedback": [item]})
    if answer.get("stored") != 1:
        sys.exit(f"feedback not stored: {answer}")
    return json.dumps({"service": service, "card": card["uuid"], "rule": card["source"]["topic"]["code"]})


def report(line: str) -> str:
    expected = json.loads(line)
    command = ["cds-service", "feedback-report", "--format", "json", "--no-chart"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        sys.exit(f"feedback-report exited {result.returncode}: {result.stderr.strip()}")
    rules = {rule["rule"]: rule for rule in json.loads(result.stdout)["rules"]}
    rule = rules.get(expected["rule"])
    if rule is None or rule["issued"] < 1 or rule["overridden"] != 1:
        sys.exit(f"rule {expected['rule']} not as posted: {rule}")
    return f"rule {expected['rule']}: issued {rule['issued']}, overridden {rule['overridden']}"


if __name__ == "__main__":
    mode, argument = sys.argv[1:3]
    print({"feedback": feedback, "report": report}[mode](argument))
