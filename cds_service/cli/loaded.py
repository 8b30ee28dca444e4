"""The rules a command reads: the ones the service would serve with these settings (site folder included)."""

from __future__ import annotations

from ..config import Settings
from ..plans.loader import load_ruleset
from ..plans.model import RuleSet


def rules_in_service(settings: Settings) -> RuleSet:
    """Load the settings' plan definitions, site parameters and site additions; RuleSetError on a problem."""
    return load_ruleset(settings.plandefinitions_dir, settings.parameters_file, settings.site_dir)
