"""The rule set in service, swapped atomically on reload; an invalid edit leaves the previous one serving."""

from __future__ import annotations

import logging
from pathlib import Path

from ..ops.metrics import PLAN_RELOADS
from ..plans.errors import RuleSetError
from ..plans.loader import load_ruleset
from ..plans.model import RuleSet
from .services import Service, build_services

log = logging.getLogger("cds_service.plans")


class RuleRegistry:
    def __init__(
        self, directory: Path, parameters_file: Path | None = None, site_dir: Path | None = None
    ) -> None:
        self.directory = directory
        self.parameters_file = parameters_file
        self.site_dir = site_dir
        self.ruleset: RuleSet = load_ruleset(directory, parameters_file, site_dir)
        self.services: dict[str, Service] = build_services(self.ruleset)
        self.generation = 1

    def reload(self) -> bool:
        """Load the folder again; on any problem log each one and keep serving the current rules."""
        try:
            ruleset = load_ruleset(self.directory, self.parameters_file, self.site_dir)
        except Exception as error:  # a loader defect too must not end the watcher: later edits must load
            unexpected = [f"{type(error).__name__}: {error}"]
            for problem in error.problems if isinstance(error, RuleSetError) else unexpected:
                log.error("plan definitions not reloaded: %s", problem)
            PLAN_RELOADS.labels("failed").inc()
            return False
        self.ruleset, self.services = ruleset, build_services(ruleset)
        self.generation += 1
        PLAN_RELOADS.labels("ok").inc()
        log.info("plan definitions reloaded: %d plans, %d facts", len(ruleset.plans), len(ruleset.facts))
        return True

    async def watch(self) -> None:
        """Reload whenever a file under the folder, the site parameters file or the site folder changes."""
        from watchfiles import awatch

        paths = [self.directory, *(path for path in (self.parameters_file, self.site_dir) if path)]
        async for _ in awatch(*paths, debounce=300, step=100):
            self.reload()
