"""`cds-service rules data`: the integrator's contract of the loaded rules, as the Markdown of
docs/integration.md."""

from __future__ import annotations

import argparse
import sys

from ..config import Settings
from ..plans.contract import build_contract
from ..plans.contract_text import markdown
from ..plans.errors import RuleSetError
from .loaded import rules_in_service


def data(args: argparse.Namespace, settings: Settings) -> int:
    try:
        ruleset = rules_in_service(settings)
    except RuleSetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(markdown(build_contract(ruleset)))
    return 0
