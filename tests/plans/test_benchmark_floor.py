"""The hand-written floor of the logic benchmark computes what the engine computes, on every fixture."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import clinical_logic  # noqa: E402
import logic_bench  # noqa: E402

from cds_service.plans.evaluation import activated  # noqa: E402
from cds_service.plans.loader import load_ruleset  # noqa: E402


def test_hand_written_facts_agree_with_the_engine_on_every_fixture_patient() -> None:
    ruleset = load_ruleset(BENCHMARKS.parent / "plandefinitions")
    evaluations = logic_bench.fixture_evaluations(ruleset)
    values: dict[str, set[str]] = {name: set() for name in clinical_logic.FACTS}
    for evaluation in evaluations:
        with activated(evaluation):
            for name, written in clinical_logic.FACTS.items():
                engine = ruleset.facts[name].compiled(None)
                assert written(evaluation) == engine, name
                values[name].add(repr(engine))
    assert len(evaluations) > 40
    assert all(len(seen) > 1 for seen in values.values()), values  # the fixtures exercise each fact
