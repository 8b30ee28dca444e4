# ruff: noqa: RUF001  (the en dash of the clinical specification's H0-H2)
"""Peer comparison with cqf-ruler (CQL PlanDefinition served over CDS Hooks): what was tried and why it was
not run on this machine. Re-checks the one Maven coordinate quickly with Maven itself when available."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

COORDINATE = "org.opencds.cqf.ruler:cqf-ruler-server:0.14.0:war"

FINDINGS = [
    "`mvn dependency:get -Dartifact=org.opencds.cqf.ruler:cqf-ruler-server:0.14.0:war` fails: the artifact "
    "is not on Maven Central; the group's `maven-metadata.xml` "
    "(https://repo.maven.apache.org/maven2/org/opencds/cqf/ruler/cqf-ruler-server/maven-metadata.xml) "
    "answers 404, and 0.5.0 is not there either. cqf-ruler is distributed as Docker images "
    "(alphora/cqf-ruler) and there is no Docker engine on this machine.",
    "`ca.uhn.hapi.fhir:hapi-fhir-storage-cr:8.8.0` is 404: that module's last release on Central is 8.2.0 "
    "(metadata `<latest>8.2.0`); in HAPI FHIR 8.8.0 it is no longer a module of the `hapi-fhir` parent POM "
    "(clinical reasoning moved to `org.opencds.cqf.fhir:cqf-fhir-cr-hapi`, latest 4.4.0 on Central).",
    "`ca.uhn.hapi.fhir:hapi-fhir-server-cds-hooks:8.8.0` resolves, but it only provides the CDS Hooks "
    "endpoints; serving a PlanDefinition through them needs the clinical-reasoning beans "
    "(`cqf-fhir-cr-hapi` with a CQL engine and translator whose version matches HAPI 8.8.0, which the 8.8.0 "
    "BOM does not pin) wired into a Spring context next to the JPA server.",
]
NEEDED = [
    "a separate launcher (tests/hapi must not change): a copy of tests/hapi's pom and ServerConfig plus "
    "`hapi-fhir-server-cds-hooks` 8.8.0 and a `cqf-fhir-cr-hapi` release built against HAPI 8.8.0, with "
    "the CR config (`CrR4Config`-equivalent) and CDS Hooks config (`CdsHooksConfig`, "
    "`CdsCrServiceRegistry`/`CdsServiceInterceptor`) registered on the RestfulServer;",
    "the hardware-removal decision (RULES.md 2.4, H0–H2: index fusion, hardware-failure evidence, block "
    "relief ≥ threshold, red-flag suppression) written as CQL in a Library (ValueSets for the ICD-10/CPT "
    "codes) and a PlanDefinition with an `order-select` trigger, translated to ELM;",
    "the same 100-resource patient loaded into that server, and the same order-select request timed against "
    "both services (the peer fetches its own data via its prefetch templates).",
    "Estimated effort: several hours of Spring/CR wiring and CQL authoring, well beyond the 15-minute "
    "time box of this benchmark run.",
]


def run(check: bool = True) -> dict[str, Any]:
    result: dict[str, Any] = {"ran": False, "findings": FINDINGS, "needed": NEEDED, "check": None}
    if check and shutil.which("mvn"):
        try:
            out = subprocess.run(
                ["mvn", "-B", "-q", "dependency:get", f"-Dartifact={COORDINATE}", "-Dtransitive=false"],
                capture_output=True,
                text=True,
                timeout=90,
            )
            lines = [ln for ln in out.stdout.splitlines() if "ERROR" in ln][:1]
            result["check"] = {
                "command": f"mvn dependency:get -Dartifact={COORDINATE}",
                "exit": out.returncode,
                "error": lines[0][:300] if lines else "",
            }
        except subprocess.TimeoutExpired:
            result["check"] = {"command": f"mvn dependency:get -Dartifact={COORDINATE}", "exit": "timeout"}
    return result
