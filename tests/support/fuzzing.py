"""Strategies and oracles for fuzzing the HTTP surface: random JSON, mutations of valid hook requests, and
what every answer must look like whatever was sent."""

from __future__ import annotations

import contextlib
import copy
import json
import signal
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import strategies as st

Path = tuple[str | int, ...]

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)

# Fields the rules read from prefetch resources, each given the JSON type it must never crash on.
WRONG_TYPES: dict[str, Callable[[Any], Any]] = {
    "status": lambda junk: [junk],
    "code": lambda junk: str(junk),
    "valueQuantity": lambda junk: 7.5,
    "effectiveDateTime": lambda junk: {"value": junk},
    "dispenseRequest": lambda junk: [junk],
    "clinicalStatus": lambda junk: [junk],
    "meta": lambda junk: junk,
}


@contextlib.contextmanager
def answered_within(seconds: float) -> Iterator[None]:
    """Turn a hung request into a TimeoutError: the TestClient would otherwise wait for it forever."""

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def encode(value: Any) -> bytes:
    """Stdlib JSON, so NaN, infinities and integers past 64 bits reach the server's parser as sent."""
    return json.dumps(value).encode()


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every member and item of a JSON value, parents before children."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


def _parent(body: Any, path: Path) -> Any:
    for key in path[:-1]:
        body = body[key]
    return body


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def bundles(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The prefetch bundles still holding an entry list, by key (earlier mutations may have broken some)."""
    return {
        key: value
        for key, value in _dict(body.get("prefetch")).items()
        if isinstance(_dict(value).get("entry"), list)
    }


def resources(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The FHIR resources of the prefetch bundles and draft orders, as live references into `body`."""
    drafts = _dict(_dict(body.get("context")).get("draftOrders"))
    entries = [entry for bundle in [*bundles(body).values(), drafts] for entry in bundle.get("entry") or []]
    return [entry["resource"] for entry in entries if isinstance(_dict(entry).get("resource"), dict)]


@st.composite
def mutated(draw: st.DrawFn, example: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """One to three mutations of a valid request, and a description of each for the failure report."""
    body = copy.deepcopy(example)
    done = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "replace", "duplicate", "drop", "wrong type", "coding"]))
        members, keys, found = paths(body), sorted(bundles(body)), resources(body)
        if kind in ("delete", "replace") and members:
            path = draw(st.sampled_from(members))
            if kind == "delete":
                del _parent(body, path)[path[-1]]
            else:
                _parent(body, path)[path[-1]] = draw(JSON_VALUES)
        elif kind in ("duplicate", "drop") and keys:
            path = ("prefetch", draw(st.sampled_from(keys)), "entry")
            entries = body["prefetch"][path[1]]["entry"]
            body["prefetch"][path[1]]["entry"] = (
                entries * draw(st.integers(2, 4)) if kind == "duplicate" else entries[: len(entries) // 2]
            )
        elif kind == "wrong type" and found:
            resource, field = draw(st.sampled_from(found)), draw(st.sampled_from(sorted(WRONG_TYPES)))
            resource[field] = WRONG_TYPES[field](draw(JSON_VALUES))
            path = (resource.get("resourceType"), field)
        elif kind == "coding" and found:
            resource = draw(st.sampled_from(found))
            concepts = sorted(key for key, value in resource.items() if "coding" in _dict(value))
            field = draw(st.sampled_from(concepts)) if concepts else "code"
            resource[field] = {**_dict(resource.get(field)), "coding": draw(st.text(max_size=10))}
            path = (resource.get("resourceType"), field, "coding")
        else:
            continue
        done.append(f"{kind} {'.'.join(map(str, path))}")
    return done, body


def check_outcome(status: int, body: Any) -> None:
    """Every error answer is a FHIR OperationOutcome with at least one issue."""
    assert isinstance(body, dict) and body.get("resourceType") == "OperationOutcome", (status, body)
    assert body.get("issue") and all(issue.get("diagnostics") for issue in body["issue"]), body


def check_cards(body: Any) -> None:
    """A 200 is only acceptable with well-formed cards, judged by the spec rather than our own models."""
    assert isinstance(body, dict) and isinstance(body.get("cards"), list), body
    for card in body["cards"]:
        assert isinstance(card.get("uuid"), str) and card["uuid"], card
        assert isinstance(card.get("summary"), str) and len(card["summary"]) < 140, card
        assert card.get("indicator") in {"info", "warning", "critical"}, card
        assert isinstance(card.get("source"), dict) and card["source"].get("label"), card


def check_answer(status: int, body: Any) -> None:
    """No 5xx; a 4xx carries an OperationOutcome; a 200 carries well-formed cards."""
    assert status < 500, (status, body)
    if status >= 400:
        check_outcome(status, body)
    elif status == 200:
        check_cards(body)
